from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .stream import Queue

__all__ = ["StageChain"]


class StageChain(wiring.Component):
    """Stages connected in a chain by queues: ``i`` → stage 0 → queue → stage 1 → ... → ``o``.

    Every stage is a component with a stream ``i`` and a stream ``o`` (the channel-serial
    engine's beat format: ``{"data": lanes elements, "last"}``), the ``o`` of one taking the
    payload the next's ``i`` takes. A :class:`~convaccel.hdl.stream.Queue` between two stages
    holds ``depths[n]`` beats: back-pressure alone keeps the chain correct, whatever the depths
    (a stage never drops or duplicates a beat); the depths only decide how much a burst of one
    stage may run ahead of a slower one.

    Parameters
    ----------
    stages : sequence of wiring.Component
    layouts : sequence of shape-castable
        The payload between stage ``n`` and ``n + 1`` (a stream signature does not report
        it), one fewer than the stages; and the chain's input and output layouts first and
        last: ``len(stages) + 1`` in all.
    depths : sequence of int
        Beats of each queue, one fewer than the stages.

    Members
    -------
    i : In(stream.Signature(layouts[0]))
    o : Out(stream.Signature(layouts[-1]))
    """

    def __init__(self, stages, layouts, depths):
        stages = tuple(stages)
        assert len(layouts) == len(stages) + 1 and len(depths) == len(stages) - 1
        self._stages = stages
        self._queues = tuple(Queue(layout, depth)
                             for layout, depth in zip(layouts[1:-1], depths))
        super().__init__({
            "i": In(stream.Signature(layouts[0])),
            "o": Out(stream.Signature(layouts[-1])),
        })

    @property
    def stages(self):
        return self._stages

    @property
    def memories(self):
        return tuple(mem for part in (*self._stages, *self._queues) for mem in part.memories)

    def elaborate(self, platform):
        m = Module()
        for n, stage in enumerate(self._stages):
            m.submodules[f"stage{n}"] = stage
        for n, queue in enumerate(self._queues):
            m.submodules[f"queue{n}"] = queue
        wiring.connect(m, wiring.flipped(self.i), self._stages[0].i)
        for n, queue in enumerate(self._queues):
            wiring.connect(m, self._stages[n].o, queue.i)
            wiring.connect(m, queue.o, self._stages[n + 1].i)
        wiring.connect(m, self._stages[-1].o, wiring.flipped(self.o))
        return m
