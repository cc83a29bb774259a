"""The link's data path to and from the engine: request payloads into weight-load and pixel
beats, result beats into bytes."""

from amaranth import *
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..hdl.accelerator import load_layout
from ..hdl.output import pixel_out_layout
from ..hdl.padder import pixel_in_layout
from ..hdl.stage import MemoryShape
from .decoder import chunk_signature
from .framing import buffer_write_signature

__all__ = ["ChunkStreamer", "ResultSerialiser"]


class ChunkStreamer(wiring.Component):
    """Two packet buffers: the receiver writes one while the other streams into the engine.

    A chunk started on ``chunk`` (the buffer just received, ``chunk.length`` bytes) is read
    byte by byte into a word; each whole word leaves as a beat on ``weights`` (one value of
    `weight_bytes`, big-endian) or ``pixels`` (the beat's channels, the lowest first, each of
    `input_bytes`, big-endian: a pixel's channels in order, whether a beat is a whole pixel or
    one of a channel-serial engine's chunks), and the receiving buffer swaps. The streamer
    counts the beats of a load and of a frame to mark the last one. A value that does not fit
    its width on the engine's side sets ``error`` (sticky until ``clear``).

    Throughput: a beat per ``bytes + 1`` cycles.

    Parameters
    ----------
    max_payload : int
        Bytes of each buffer.
    weight_bytes, input_bytes : int
        Bytes of a weight-load value and of an input channel on the wire.
    weight_shape : signed shape
        A weight-load beat's value on the engine's side.
    pixel_shape : ArrayLayout
        An input beat on the engine's side: its channels.
    load_beats, frame_beats : int
        Beats of a weight load and of a frame.

    Members
    -------
    write : In(buffer_write_signature(max_payload))
    chunk : In(chunk_signature(max_payload))
    weights : Out(stream.Signature(load_layout(weight_shape)))
        The engine's weight-load beats (:func:`~convaccel.hdl.accelerator.load_layout`).
    pixels : Out(stream.Signature(pixel_in_layout(pixel_shape)))
        The engine's input beats (:func:`~convaccel.hdl.padder.pixel_in_layout`).
    error : Out(1)
    clear : In(1)
        The link's reset: no chunk pending, the load and frame counts at 0, no error.
    """

    def __init__(self, *, max_payload, weight_bytes, input_bytes, weight_shape, pixel_shape,
                 load_beats, frame_beats):
        self._max_payload = max_payload
        self._weight_bytes = weight_bytes
        self._input_bytes = input_bytes
        self._weight_shape = Shape.cast(weight_shape)
        self._pixel_shape = pixel_shape
        self._load_beats = load_beats
        self._frame_beats = frame_beats
        super().__init__({
            "write": In(buffer_write_signature(max_payload)),
            "chunk": In(chunk_signature(max_payload)),
            "weights": Out(stream.Signature(load_layout(weight_shape))),
            "pixels": Out(stream.Signature(pixel_in_layout(pixel_shape))),
            "error": Out(1),
            "clear": In(1),
        })

    @property
    def memories(self):
        return (MemoryShape("link packet buffers", 8, self._buffer_words),)

    @property
    def _buffer_bits(self):
        # a buffer's address bits: the two buffers are the halves of one memory
        return max(1, (self._max_payload - 1).bit_length())

    @property
    def _buffer_words(self):
        return 2 << self._buffer_bits

    def elaborate(self, platform):
        m = Module()
        max_payload = self._max_payload
        load_total, frame_total = self._load_beats, self._frame_beats
        channels = self._pixel_shape.length
        elem = Shape.cast(self._pixel_shape.elem_shape)
        wb = self._weight_bytes
        pb = self._input_bytes * channels

        # The two packet buffers are the halves of one memory (the buffer is the address's top
        # bit), so that its read port drives `word` with no multiplexer between them: a block
        # RAM's clock to output takes 5.83 ns of an ECP5's 8 at 125 MHz.
        bits = self._buffer_bits
        m.submodules.buffers = buffers = memory.Memory(shape=8, depth=self._buffer_words,
                                                       init=[])
        wr, rd = buffers.write_port(), buffers.read_port()
        rx_sel = Signal()                 # the buffer receiving; the other may be streaming
        m.d.comb += [wr.addr.eq(Cat(self.write.addr[:bits], rx_sel)),
                     wr.data.eq(self.write.data), wr.en.eq(self.write.en)]

        pending = Signal()                # a chunk is (still) entering the engine
        chunk_sel = Signal()
        chunk_pixels = Signal()           # target: pixels (else weights)
        chunk_bytes = Signal(range(max_payload + 1))
        read_addr = Signal(range(max_payload + 1))
        fetched = Signal()                # the read port holds the byte at read_addr - 1
        unit = Signal(range(max(wb, pb) + 1))
        word = Signal(8 * max(wb, pb), reset_less=True)     # (taken only with a beat's valid)
        beat_valid = Signal()
        # (`beat_valid` split by target, each a flip-flop: the engine's `take` heads its load
        # control, and a LUT before it was on the critical path at 36 MHz on the UP5K)
        weights_valid = Signal()
        pixels_valid = Signal()
        load_index = Signal(range(load_total))
        pixel_index = Signal(range(frame_total))
        # Each beat's `last` is a flip-flop, set a cycle ahead from its count's next value: it
        # heads the engine's load control, whose decode of it was the critical path at 36 MHz.
        load_last = Signal(init=load_total == 1)          # load_index == load_total - 1
        pixel_last = Signal(init=frame_total == 1)        # pixel_index == frame_total - 1
        value_error = Signal()
        m.d.comb += [self.chunk.pending.eq(pending), self.chunk.pending_pixels.eq(chunk_pixels),
                     self.error.eq(value_error)]

        byte = rd.data
        request = Signal()
        m.d.comb += [rd.addr.eq(Cat(read_addr[:bits], chunk_sel)), rd.en.eq(request)]

        # A byte is fetched (the read port then holds it) and consumed into `word`; a whole
        # beat waits in `word` until the engine takes it.
        unit_size = Mux(chunk_pixels, pb, wb)
        consume = pending & fetched & ~beat_valid
        m.d.comb += request.eq(pending & (read_addr < chunk_bytes) & (~fetched | consume))
        with m.If(consume):
            m.d.sync += [word.eq(Cat(byte, word)), unit.eq(unit + 1)]
            with m.If(unit + 1 == unit_size):
                m.d.sync += [beat_valid.eq(1), unit.eq(0), weights_valid.eq(~chunk_pixels),
                             pixels_valid.eq(chunk_pixels)]
        with m.If(request):
            m.d.sync += [read_addr.eq(read_addr + 1), fetched.eq(1)]
        with m.Elif(consume):
            m.d.sync += fetched.eq(0)

        # weights: one value of weight_bytes, big-endian, must fit the load width
        w_width = self._weight_shape.width
        w_value = word[:8 * wb].as_signed()
        m.d.comb += [
            self.weights.payload.data.eq(w_value),
            self.weights.payload.last.eq(load_last),
            self.weights.valid.eq(weights_valid),
        ]
        # pixels: channel 0 first, each input_bytes big-endian, must fit the input range
        ib = 8 * self._input_bytes
        values = []
        for c in range(channels):
            lsb = (channels - 1 - c) * ib
            raw = word[lsb:lsb + ib]
            values.append(raw.as_signed() if elem.signed else raw)
            m.d.comb += self.pixels.payload.data[c].eq(raw)
        m.d.comb += [
            self.pixels.payload.last.eq(pixel_last),
            self.pixels.valid.eq(pixels_valid),
        ]
        w_lo, w_hi = -(1 << (w_width - 1)), (1 << (w_width - 1)) - 1
        if elem.signed:
            x_lo, x_hi = -(1 << (elem.width - 1)), (1 << (elem.width - 1)) - 1
        else:
            x_lo, x_hi = 0, (1 << elem.width) - 1
        with m.If(self.weights.valid & self.weights.ready):
            m.d.sync += [beat_valid.eq(0), weights_valid.eq(0),
                         load_index.eq(Mux(load_last, 0, load_index + 1)),
                         load_last.eq(Mux(load_last, load_total == 1,
                                          load_index == load_total - 2))]
            with m.If((w_value < w_lo) | (w_value > w_hi)):
                m.d.sync += value_error.eq(1)
        with m.If(self.pixels.valid & self.pixels.ready):
            m.d.sync += [beat_valid.eq(0), pixels_valid.eq(0),
                         pixel_index.eq(Mux(pixel_last, 0, pixel_index + 1)),
                         pixel_last.eq(Mux(pixel_last, frame_total == 1,
                                           pixel_index == frame_total - 2))]
            for value in values:
                with m.If((value < x_lo) | (value > x_hi)):
                    m.d.sync += value_error.eq(1)
        with m.If(pending & ~beat_valid & ~fetched & (read_addr == chunk_bytes)):
            m.d.sync += pending.eq(0)

        with m.If(self.chunk.start):
            m.d.sync += [pending.eq(1), chunk_sel.eq(rx_sel), rx_sel.eq(~rx_sel),
                         chunk_pixels.eq(self.chunk.pixels), chunk_bytes.eq(self.chunk.length),
                         read_addr.eq(0), fetched.eq(0), unit.eq(0)]
        with m.If(self.clear):
            m.d.sync += [pending.eq(0), beat_valid.eq(0), weights_valid.eq(0),
                         pixels_valid.eq(0), load_index.eq(0), pixel_index.eq(0),
                         load_last.eq(load_total == 1), pixel_last.eq(frame_total == 1),
                         value_error.eq(0)]
        return m


class ResultSerialiser(wiring.Component):
    """Result beats into bytes: each channel of `result_bytes`, big-endian, channel 0 first;
    a pixel is `beats_per_pixel` beats (one, or a channel-serial engine's column blocks, in
    channel order).

    The channel is picked from the beat on ``i``, which the engine holds until taken, into a
    shift register whose top byte leaves on ``o``: the output is then a register, and the only
    wide multiplexer (one of `channels` lanes) ends at flip-flops. A lane is loaded only into
    an empty shift register (a bubble per channel that the serial line never notices), so
    ``i.ready`` comes from registers alone. The serialiser also counts the pixels whose last
    byte has left and that no READ has claimed yet (``ready``; ``claim`` takes some).

    Throughput: a beat per ``channels * (result_bytes + 1)`` cycles.

    Parameters
    ----------
    channels : int
        Channels of a beat.
    acc_shape : signed shape
        A channel's value in the engine's result beats.
    result_bytes : int
        Bytes of a channel on the wire (the value sign-extended).
    queue_pixels : int
        The most pixels that ``ready`` counts (the result queue's size).
    beats_per_pixel : int
        Result beats of one pixel.

    Members
    -------
    i : In(stream.Signature(pixel_out_layout(acc_shape, channels)))
        The engine's result beats (:func:`~convaccel.hdl.output.pixel_out_layout`).
    o : Out(stream.Signature(8))
    ready : Out(range(queue_pixels + 1))
    claim : In(range(queue_pixels + 1))
    clear : In(1)
        The link's reset: between pixels, none ready.
    """

    def __init__(self, *, channels, acc_shape, result_bytes, queue_pixels, beats_per_pixel=1):
        self._channels = channels
        self._beats = beats_per_pixel
        self._result_bytes = result_bytes
        self._acc_shape = acc_shape
        super().__init__({
            "i": In(stream.Signature(pixel_out_layout(acc_shape, channels))),
            "o": Out(stream.Signature(8)),
            "ready": Out(range(queue_pixels + 1)),
            "claim": In(range(queue_pixels + 1)),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        rb = self._result_bytes
        channels = self._channels
        lanes = []
        for c in range(channels):
            lane = Signal(signed(8 * rb), name=f"result{c}")
            m.d.comb += lane.eq(self.i.payload.data[c])              # sign-extended
            lanes.append(lane)
        channel = Signal(range(channels))
        shifter = Signal(8 * rb)
        left = Signal(range(rb + 1))      # bytes of the channel in `shifter` not yet sent
        last_lane = Signal()              # `shifter` holds the pixel's last channel
        last_channel = channel == channels - 1
        if self._beats > 1:
            block = Signal(range(self._beats))        # the beat of its pixel
            last_block = Signal()                     # block == beats - 1
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += [block.eq(Mux(last_block, 0, block + 1)),
                             last_block.eq(~last_block & (block == self._beats - 2))]
            with m.If(self.clear):
                m.d.sync += [block.eq(0), last_block.eq(0)]
        else:
            last_block = C(1)
        queued = self.o.valid & self.o.ready
        m.d.comb += [self.o.payload.eq(shifter[-8:]), self.o.valid.eq(left != 0)]
        with m.If(queued):
            m.d.sync += [shifter.eq(shifter << 8), left.eq(left - 1)]
        with m.If(self.i.valid & (left == 0)):
            m.d.comb += self.i.ready.eq(last_channel)
            m.d.sync += [shifter.eq(Array(lanes)[channel]), left.eq(rb),
                         last_lane.eq(last_channel & last_block),
                         channel.eq(Mux(last_channel, 0, channel + 1))]
        # (counts are as wide as what they count; STATUS zero-extends them)
        ready = Signal.like(self.ready)
        ready_inc = Signal()
        m.d.comb += [ready_inc.eq(queued & (left == 1) & last_lane), self.ready.eq(ready)]
        m.d.sync += ready.eq(ready + ready_inc - self.claim)
        with m.If(self.clear):
            m.d.sync += [channel.eq(0), left.eq(0), ready.eq(0)]
        return m
