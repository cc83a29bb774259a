# amaranth: UnusedElaboratable=no
# (The self-test builds its engine in its constructor, so that the fit check can read the
# engine's figures without elaborating it.)
"""The built-in self-test: the engine, a test frame and its expected output in ROM.

Until the host link lands, a board runs this: it proves on the board itself that the engine
computes the golden model's output, frame after frame.
"""

import numpy as np
from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import Out

from .. import golden
from ..beats import pixel_beats, result_beats, weight_beats
from ..hdl.accelerator import ConvAccelerator
from ..hdl.stage import MemoryShape
from ..spec import bits_for

__all__ = ["SelfTest", "rom_word_bits", "selftest_data"]

#: The largest bias the default test frame draws, so that the stored words stay narrow (the
#: engine's bias path is still exercised: its width is the spec's, only the values are small).
TEST_BIAS_BITS = 13


def selftest_data(spec, seed=0):
    """The self-test's input, weights and bias: full-range random inputs and weights, biases
    within ``±2**(TEST_BIAS_BITS - 1)``, from a seeded generator."""
    rng = np.random.default_rng(seed)
    x = rng.integers(*spec.input_range, endpoint=True, size=spec.input_shape, dtype=np.int64)
    w = rng.integers(*spec.weight_range, endpoint=True, size=spec.weight_shape, dtype=np.int64)
    bias_bits = min(spec.bias_bits, TEST_BIAS_BITS)
    b = rng.integers(-(1 << (bias_bits - 1)), 1 << (bias_bits - 1), size=spec.bias_shape,
                     dtype=np.int64)
    return x, w, b


def rom_word_bits(values, signed=True):
    """Bits of the narrowest word that holds every one of `values` (two's complement if
    `signed`, by the spec's width rule :func:`~convaccel.spec.bits_for`): the ROMs store that
    and sign-extend on read."""
    values = [int(v) for v in np.asarray(values, dtype=object).ravel()] or [0]
    return bits_for(min(values), max(values), signed)


class SelfTest(wiring.Component):
    """The engine looping a stored test frame, every result compared with its expected value.

    After reset it loads the weights and biases once from a ROM, then streams the test frame
    from a ROM into the engine forever. Each result beat is compared, as it leaves the engine
    (results are always taken), with the expected-output ROM, and its ``last`` flag with the
    frame's end. A mismatch, an engine error or a result that does not come within
    ``timeout`` cycles sets ``failed`` for good; ``passed`` rises when a frame has completed
    and nothing has failed.

    The ROMs hold each word at the narrowest width that holds every stored value, sign-extended
    when read (:func:`rom_word_bits`), so the comparison is exact at the engine's full width.

    Parameters
    ----------
    spec : ConvSpec
    x, w, b : array
        The test frame, weights and bias (:func:`selftest_data` makes them).
    expected : array or None
        The expected output; ``None`` means ``golden.conv2d(x, w, b, spec)``. (A test passes a
        corrupted one to see the self-test fail.)

    Members
    -------
    passed : Out(1)
        At least one frame completed and every result so far matched.
    failed : Out(1)
        Sticky: a result or frame end differed from the expected one, the engine flagged an
        error, or it stopped producing results.
    frames : Out(16)
        Frames completed (wraps).
    busy, done, error : Out(1)
        The engine's status.
    """

    passed: Out(1)
    failed: Out(1)
    frames: Out(16)
    busy: Out(1)
    done: Out(1)
    error: Out(1)

    def __init__(self, spec, x, w, b, *, expected=None):
        self._spec = spec
        if expected is None:
            expected = golden.conv2d(x, w, b, spec)
        expected = np.asarray(expected)
        if expected.shape != spec.output_shape:
            raise ValueError(f"expected must have the output shape {spec.output_shape}, "
                             f"not {expected.shape}")
        self._weights = [v for v, _ in weight_beats(w, b, spec)]
        self._pixels = [p for p, _ in pixel_beats(x, spec)]
        self._expected = result_beats(expected, spec)
        self._engine = ConvAccelerator(spec)
        super().__init__()

    @property
    def rom_shapes(self):
        """``{name: (word bits, depth)}`` of the three ROMs."""
        spec = self._spec
        return {
            "weights": (rom_word_bits(self._weights), len(self._weights)),
            "pixels": (rom_word_bits(self._pixels, spec.input_signed) * spec.beat_channels,
                       len(self._pixels)),
            "expected": (rom_word_bits(self._expected) * spec.result_channels,
                         len(self._expected)),
        }

    @property
    def memories(self):
        """The engine's memories and the three ROMs (what the fit check counts)."""
        roms = tuple(MemoryShape(f"self-test {name} ROM", width, depth, rom=True)
                     for name, (width, depth) in self.rom_shapes.items())
        return self._engine.memories + roms

    @property
    def timeout(self):
        """Cycles without a result after which the engine is declared stuck."""
        return 4 * (self._spec.cycles + len(self._weights)) + 1024

    def elaborate(self, platform):
        m = Module()
        spec = self._spec
        m.submodules.engine = engine = self._engine
        m.d.comb += [
            self.busy.eq(engine.busy),
            self.done.eq(engine.done),
            self.error.eq(engine.error),
        ]

        # -- weights: once after reset ---------------------------------------------------------
        w_bits = rom_word_bits(self._weights)
        m.submodules.weight_rom = weight_rom = memory.Memory(
            shape=signed(w_bits), depth=len(self._weights), init=self._weights)
        self._rom_stream(m, weight_rom, engine.weights, loop=False,
                         data_eq=lambda payload, word: payload.data.eq(word))
        # A frame may start whenever the engine is idle, so the first pixel waits until the
        # last weight has gone in.
        loaded = Signal()
        with m.If(engine.weights.valid & engine.weights.ready & engine.weights.payload.last):
            m.d.sync += loaded.eq(1)

        # -- the frame: forever ----------------------------------------------------------------
        elem = signed if spec.input_signed else unsigned
        p_bits = rom_word_bits(self._pixels, spec.input_signed)
        pixel_layout = data.ArrayLayout(elem(p_bits), spec.beat_channels)
        m.submodules.pixel_rom = pixel_rom = memory.Memory(
            shape=pixel_layout, depth=len(self._pixels), init=self._pixels)

        def pixel_eq(payload, word):
            return [payload.data[i].eq(word[i]) for i in range(spec.beat_channels)]
        self._rom_stream(m, pixel_rom, engine.pixels, loop=True, data_eq=pixel_eq,
                         enable=loaded)

        # -- results: compared as they leave -----------------------------------------------------
        e_bits = rom_word_bits(self._expected)
        depth = len(self._expected)
        m.submodules.expected_rom = expected_rom = memory.Memory(
            shape=data.ArrayLayout(signed(e_bits), spec.result_channels), depth=depth,
            init=self._expected)
        rd = expected_rom.read_port()
        index = Signal(range(depth))
        take = engine.results.valid & engine.results.ready
        next_index = Mux(index == depth - 1, 0, index + 1)
        m.d.comb += [
            engine.results.ready.eq(1),
            # The read port always shows the word for `index`: it reads the next one on a take.
            rd.addr.eq(Mux(take, next_index, index)),
        ]
        # The comparison is pipelined (register the beat and its expected word, compare each
        # channel, then combine), so that it is never the design's critical path.
        beat = engine.results.payload
        got = Signal.like(beat.data)
        want = Signal.like(rd.data)
        check = Signal()
        last_wrong = Signal()
        frame_end = Signal()
        m.d.sync += [
            check.eq(take),
            frame_end.eq(take & beat.last),
            got.eq(beat.data),
            want.eq(rd.data),
            last_wrong.eq(take & (beat.last != (index == depth - 1))),
        ]
        # Each value is compared in slices of 8 bits (two levels of LUT4), the slices' verdicts
        # registered and combined in the next cycle.
        width = max(len(Value.cast(got[0])), len(Value.cast(want[0])))

        def extend(value):                            # sign extension to `width` bits
            value = Value.cast(value)
            return Cat(value, value[-1].replicate(width - len(value)))
        slices = [(extend(got[c]) ^ extend(want[c]))[n:n + 8].any()
                  for c in range(spec.result_channels) for n in range(0, width, 8)]
        slices_wrong = Signal(len(slices))
        checked = Signal()
        end_wrong = Signal()
        frame_checked = Signal()
        m.d.sync += [
            slices_wrong.eq(Cat(slices)),
            checked.eq(check),
            end_wrong.eq(last_wrong),
            frame_checked.eq(frame_end),
        ]
        lanes_wrong = checked & slices_wrong.any()       # (any channel)
        # A frame counts once its last beat has been compared, in the same cycle as a mismatch
        # in it would set `failed`: `passed` never shows a frame that failed.
        seen = Signal()
        with m.If(lanes_wrong | end_wrong):
            m.d.sync += self.failed.eq(1)
        with m.If(frame_checked):
            m.d.sync += [seen.eq(1), self.frames.eq(self.frames + 1)]

        idle = Signal(range(self.timeout + 1))
        with m.If(take):
            m.d.sync += [index.eq(next_index), idle.eq(0)]
        with m.Elif(idle == self.timeout):
            m.d.sync += self.failed.eq(1)
        with m.Else():
            m.d.sync += idle.eq(idle + 1)
        with m.If(engine.error):
            m.d.sync += self.failed.eq(1)
        m.d.comb += self.passed.eq(seen & ~self.failed)
        return m

    @staticmethod
    def _rom_stream(m, rom, stream, *, loop, data_eq, enable=True):
        """Stream every word of `rom` on `stream`, ``last`` on the final one; once, or again
        and again, once `enable` is high. The read port's register is the stream's payload
        register."""
        depth = rom.depth
        rd = rom.read_port()
        addr = Signal(range(depth + 1))
        valid = Signal()
        last = Signal()
        advance = ~valid | stream.ready
        m.d.comb += [
            rd.addr.eq(addr),
            rd.en.eq(advance),
            stream.valid.eq(valid),
            stream.payload.last.eq(last),
            data_eq(stream.payload, rd.data),
        ]
        with m.If(advance):
            with m.If(enable & (addr < depth)):
                m.d.sync += [
                    valid.eq(1),
                    last.eq(addr == depth - 1),
                    addr.eq(Mux(loop & (addr == depth - 1), 0, addr + 1)),
                ]
            with m.Else():
                m.d.sync += valid.eq(0)
