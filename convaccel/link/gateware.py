# amaranth: UnusedElaboratable=no
# (The link builds its parts in its constructor, so that their figures are known before
# elaboration; the fit check builds a link only to read them.)
"""The engine behind the serial host link: :class:`HostLink` composed of the parts below, and
:class:`SerialAccelerator`, the same on serial pins.

::

    i ──► RequestReceiver ──request──► RequestDecoder ──respond──► ResponseSender ──► o
              │ write        (count)        │ chunk        (count)      ▲ results, status
              ▼                             ▼                           │
          ChunkStreamer (2 packet buffers) ──weights/pixels──► engine ──► ResultSerialiser
                                                                          ──► result queue

The receiver and the sender share one :class:`~.framing.PayloadCounter`.
"""

from dataclasses import replace

from amaranth import *
from amaranth.hdl import ResetInserter
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.accelerator import ConvAccelerator
from ..hdl.stream import Queue
from .dataflow import ChunkStreamer, ResultSerialiser
from .decoder import RequestDecoder
from .framing import PayloadCounter, RequestReceiver, ResponseSender
from .protocol import MAX_PAYLOAD, LinkFormat
from .uart import UARTRx, UARTTx

__all__ = ["RESULT_HEAD", "RESULT_QUEUE", "HostLink", "SerialAccelerator"]

#: The status outputs (for LEDs) of both components below.
STATUS_PORTS = ("busy", "done", "error", "loaded")

#: The default result queue, in bytes.
RESULT_QUEUE = 512

#: Of the result queue's bytes, those held in registers at its head, per FPGA family: read
#: from its block RAM into them, so that the block RAM's output drives nothing else. On the
#: ECP5 a DP16KD takes 5.83 ns from clock to output (of 8 at 125 MHz), and the sender's CRC and
#: multiplexers behind it were the critical path at 97.65 MHz. (Elsewhere none: on the UP5K
#: they would cost 30 logic cells that a ResNet-8 stage's fit does not have.)
RESULT_HEAD = {"ecp5": 2}


class HostLink(wiring.Component):
    """The engine behind the framed request/response protocol of :mod:`convaccel.link.protocol`.

    Requests arrive on the byte stream ``i``; responses leave on ``o``. A request's payload is
    kept in one of two packet buffers and acted on only once its CRC has matched, so a damaged,
    truncated or refused packet changes nothing. An accepted LOAD or FRAME chunk is then fed to
    the engine from its buffer while the other buffer takes the next request; a chunk that
    arrives before the previous one has entered the engine is refused with BUSY (read results,
    then retry). Results leave the engine into a byte queue, from which READ returns whole
    pixels; while the queue is full the engine waits. A packet that stops arriving for
    ``timeout`` cycles is dropped with TIMEOUT; bytes between packets are skipped. RESET, once
    answered, resets the engine and the link's state (a cycle of a registered reset).

    Parameters
    ----------
    spec : ConvSpec
    max_payload : int
        Largest payload of a request or response, in bytes (each packet buffer's size).
    result_queue : int
        Bytes of results that can wait to be read.
    timeout : int
        Clock cycles without a byte after which a partial request is dropped.
    engine : component or None
        What computes: by default a :class:`ConvAccelerator` for `spec`; a network's
        :class:`~convaccel.link.network.NetworkEngine` (with `spec` its
        :class:`~convaccel.link.network.NetworkLinkSpec`), whose weights are in ROMs: the link
        then takes no LOAD, and ``loaded`` is the engine's.
    family : str or None
        The FPGA family built for: on one in :data:`RESULT_HEAD` the result queue's head is
        in registers.

    Members
    -------
    i : In(stream.Signature(8, always_ready=True))
    o : Out(stream.Signature(8))
    busy, done, error, loaded : Out(1)
        Status for LEDs: a frame in progress, the last frame done, the engine's or the link's
        error flag, the weights loaded.
    """

    def __init__(self, spec, *, max_payload=MAX_PAYLOAD, result_queue=RESULT_QUEUE,
                 timeout=100_000, engine=None, family=None):
        fmt = LinkFormat(spec, max_payload)
        head = RESULT_HEAD.get(family, 0)
        # (at least a pixel's bytes, and a byte more than the registers at its head)
        self._result_queue = max(result_queue, fmt.result_pixel_bytes, head + 1)
        queue_pixels = self._result_queue // fmt.result_pixel_bytes
        self._engine = ConvAccelerator(spec) if engine is None else engine
        self._preloaded = spec.load_beats == 0
        self._receiver = RequestReceiver(max_payload=max_payload, timeout=timeout,
                                         weight_bytes=fmt.weight_bytes,
                                         pixel_bytes=fmt.pixel_bytes)
        self._counter = PayloadCounter(max_payload)
        self._decoder = RequestDecoder(max_payload=max_payload, load_beats=spec.load_beats,
                                       frame_pixels=spec.input_pixels,
                                       result_pixel_bytes=fmt.result_pixel_bytes,
                                       queue_pixels=queue_pixels, preloaded=self._preloaded)
        layouts = self._engine.layouts
        self._streamer = ChunkStreamer(max_payload=max_payload, weight_bytes=fmt.weight_bytes,
                                       input_bytes=fmt.input_bytes,
                                       weight_shape=layouts["weights"]["data"].shape,
                                       pixel_shape=layouts["pixels"]["data"].shape,
                                       # (a preloaded engine's is never used)
                                       load_beats=max(spec.load_beats, 1),
                                       frame_beats=spec.input_beats)
        results = layouts["results"]["data"].shape
        self._serialiser = ResultSerialiser(channels=results.length,
                                            acc_shape=results.elem_shape,
                                            result_bytes=fmt.result_bytes,
                                            queue_pixels=queue_pixels,
                                            beats_per_pixel=spec.pixel_result_beats)
        self._sender = ResponseSender(max_payload)
        # The result queue (its memory read synchronously, its head on the read port) is
        # followed by two beats of registers: its block RAM's read port drove the sender's CRC
        # and multiplexers (the ECP5's critical path at 97.65 MHz: 5.83 ns of the DP16KD's
        # clock to output, then three LUTs), and now drives only their write.
        # The two hold `result_queue` bytes between them: the serialiser counts the pixels in
        # it up to `queue_pixels`.
        self._results = Queue(8, self._result_queue - head)
        self._result_head = Queue(8, head) if head else None
        super().__init__({
            "i": In(stream.Signature(8, always_ready=True)),
            "o": Out(stream.Signature(8)),
            **{name: Out(1) for name in STATUS_PORTS},
        })

    @property
    def own_memories(self):
        """The link's own memories (:class:`~convaccel.hdl.stage.MemoryShape`)."""
        return (*self._streamer.memories,
                *(replace(shape, name="link result queue") for shape in self._results.memories),
                *(replace(shape, name="link result head")
                  for shape in (self._result_head.memories if self._result_head else ())))

    @property
    def memories(self):
        """The link's memories, then the engine's."""
        return (*self.own_memories, *self._engine.memories)

    def elaborate(self, platform):
        m = Module()
        engine = self._engine
        m.submodules.receiver = receiver = self._receiver
        m.submodules.counter = counter = self._counter
        m.submodules.decoder = decoder = self._decoder
        m.submodules.streamer = streamer = self._streamer
        m.submodules.serialiser = serialiser = self._serialiser
        m.submodules.sender = sender = self._sender
        # RESET: the engine and the link's state start afresh (the weights are gone).
        soft_reset = sender.reset
        m.submodules.engine = ResetInserter(soft_reset)(engine)
        results = self._results
        m.submodules.results = ResetInserter(soft_reset)(results)
        head = self._result_head
        if head is not None:
            m.submodules.result_head = ResetInserter(soft_reset)(head)
        m.d.comb += [decoder.clear.eq(soft_reset), streamer.clear.eq(soft_reset),
                     serialiser.clear.eq(soft_reset)]

        # requests: bytes -> receiver -> decoder; the payload into a packet buffer
        wiring.connect(m, wiring.flipped(self.i), receiver.i)
        wiring.connect(m, receiver.count, counter.rx)
        wiring.connect(m, receiver.write, streamer.write)
        wiring.connect(m, receiver.request, decoder.request)
        # chunks: a packet buffer -> the engine's weights or pixels
        wiring.connect(m, decoder.chunk, streamer.chunk)
        wiring.connect(m, streamer.weights, engine.weights)
        wiring.connect(m, streamer.pixels, engine.pixels)
        # results: the engine -> bytes -> queue
        wiring.connect(m, engine.results, serialiser.i)
        wiring.connect(m, serialiser.o, results.i)
        m.d.comb += [decoder.results_ready.eq(serialiser.ready),
                     serialiser.claim.eq(decoder.claim)]
        # responses: decoder -> sender -> bytes; the receiver waits for the last one
        wiring.connect(m, decoder.respond, sender.respond)
        wiring.connect(m, sender.count, counter.tx)
        if head is not None:
            wiring.connect(m, results.o, head.i)
            wiring.connect(m, head.o, sender.results)
        else:
            wiring.connect(m, results.o, sender.results)
        wiring.connect(m, sender.o, wiring.flipped(self.o))
        m.d.comb += [sender.command.eq(receiver.request.command),
                     receiver.responded.eq(sender.done)]

        m.d.comb += [
            self.busy.eq(engine.busy), self.done.eq(engine.done),
            self.error.eq(engine.error | streamer.error),
            self.loaded.eq(engine.loaded if self._preloaded else decoder.loaded),
            decoder.busy.eq(engine.busy),
        ]
        status = sender.status
        m.d.comb += [
            status.flags.busy.eq(engine.busy),
            status.flags.done.eq(engine.done),
            status.flags.error.eq(self.error),
            status.flags.loaded.eq(self.loaded),
            status.flags.pending.eq(streamer.chunk.pending),
            status.results_ready.eq(serialiser.ready),
            status.beats_loaded.eq(decoder.beats_loaded),
            status.pixels_sent.eq(decoder.pixels_sent),
            status.cycles.eq(engine.cycles),
            status.input_stalls.eq(engine.input_stalls),
            status.output_stalls.eq(engine.output_stalls),
            status.macs.eq(engine.macs),
        ]
        return m


class SerialAccelerator(wiring.Component):
    """The engine on a serial line: :class:`UARTRx`, :class:`HostLink`, :class:`UARTTx`.

    Parameters
    ----------
    spec : ConvSpec
    divisor : int
        Clock cycles per bit (clock frequency / baud rate).
    max_payload, result_queue, engine, family :
        As for :class:`HostLink`.

    Members
    -------
    rx : In(1)
    tx : Out(1)
    busy, done, error, loaded : Out(1)
    """

    def __init__(self, spec, *, divisor, max_payload=MAX_PAYLOAD, result_queue=RESULT_QUEUE,
                 engine=None, family=None):
        self._divisor = divisor
        # A request that pauses for 50 byte times is taken as truncated.
        self._link = HostLink(spec, max_payload=max_payload, result_queue=result_queue,
                              timeout=500 * divisor, engine=engine, family=family)
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            **{name: Out(1) for name in STATUS_PORTS},
        })

    @property
    def memories(self):
        """The link's and the engine's memories (:attr:`HostLink.memories`); the transmit
        queue is a register."""
        return self._link.memories

    @property
    def own_memories(self):
        return self._link.own_memories

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = uart_rx = UARTRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UARTTx(self._divisor)
        m.submodules.link = link = self._link
        m.d.comb += [uart_rx.rx.eq(self.rx), self.tx.eq(uart_tx.tx)]
        wiring.connect(m, uart_rx.o, link.i)
        # Responses pass a small queue: its registered outputs, not the link's response logic,
        # drive the transmitter.
        m.submodules.tx_queue = tx_queue = fifo.SyncFIFOBuffered(width=8, depth=2)
        wiring.connect(m, link.o, tx_queue.w_stream)
        wiring.connect(m, tx_queue.r_stream, uart_tx.i)
        m.d.comb += [getattr(self, name).eq(getattr(link, name)) for name in STATUS_PORTS]
        return m
