"""The PEs' weight memories: shared by the rows of a column, in block RAM or in SPRAM.

A PE reads one weight per cycle, at the fold address ``k`` of the vector it is computing. Row
``r + 1`` of a column sees each vector one cycle after row ``r`` (the array's skew), at the same
address, so ``share`` consecutive rows can keep their weights side by side in one memory word,
read once at the top row's address: lane ``i`` (row ``r0 + i``) takes its weight ``i`` cycles
later from a register chain (:class:`WeightMemory`). A memory ``share`` weights wide holds as
many PEs' weights in one block RAM as its width allows: on iCE40 two 8-bit weights fill an
EBR's 16-bit port (the pairs of :class:`~convaccel.hdl.array.ProcessingElementPair`); on ECP5
and Gowin four fill a 36-bit DP16KD / BSRAM port.

On the iCE40 UltraPlus a memory of at most 16 bits can live in one of the four
``SB_SPRAM256KA`` (16k x 16, single-ported): during a frame it is read at the fold address;
during a weight load (never during a frame) it is written at the load's address; one address
multiplexer chooses. :func:`weight_placement` is the one place that decides the sharing and
which memories go to SPRAM; the array takes its decision as a parameter (by default it asks,
at elaboration, for the platform it is elaborated for) and the fit check reads the same
function for the board.
"""

from dataclasses import dataclass

from amaranth import *
from amaranth.lib import data, memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.vendor import GowinPlatform, LatticeECP5Platform, SiliconBluePlatform

from .stage import MemoryShape

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "WeightMemory", "WeightPlacement", "device_spram",
           "platform_family", "spram_fits", "weight_groups", "weight_placement"]

#: One SB_SPRAM256KA: 16384 words of 16 bits, write-masked by nibble.
SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16

#: Rows sharing one memory: at most this many (the FF cost of the delays grows as its square).
MAX_SHARE = 4


def platform_family(platform):
    """The family (``"ice40"``, ``"ecp5"``, ``"gowin"``) of an Amaranth `platform`, or None
    (simulation, another vendor): the memories are then placed as on no device in particular."""
    if isinstance(platform, SiliconBluePlatform):
        return "ice40"
    if isinstance(platform, LatticeECP5Platform):
        return "ecp5"
    if isinstance(platform, GowinPlatform):
        return "gowin"
    return None


def device_spram(platform):
    """SB_SPRAM256KA blocks of `platform`'s device: four on an iCE40 UltraPlus (UP3K, UP5K),
    none elsewhere."""
    if isinstance(platform, SiliconBluePlatform) and platform.device.startswith("iCE40UP"):
        return 4
    return 0


def _slot(width):
    """Bits a lane takes in an SPRAM word: its width to whole nibbles (the write mask's
    granularity), so that writing one lane never touches another's bits."""
    return -(-width // 4) * 4


def spram_fits(lanes, weight_bits, depth):
    """`lanes` weights of `weight_bits` at `depth` addresses fit one SB_SPRAM256KA."""
    return lanes * _slot(weight_bits) <= SPRAM_WIDTH and depth <= SPRAM_DEPTH


def weight_groups(rows, share):
    """The rows of a column that share a memory: ``[(top row, rows in it), ...]``."""
    return [(r, min(share, rows - r)) for r in range(0, rows, share)]


@dataclass(frozen=True)
class WeightPlacement:
    """Where the PEs' weights live.

    Parameters
    ----------
    share : int
        Rows of a column that share one memory (:func:`weight_groups`): 1 (a memory per PE),
        2 (a pair's), up to :data:`MAX_SHARE`; even when the array pairs rows on dual
        multipliers (a pair's two lanes come from one memory).
    spram : frozenset of (row, col)
        The memories (by their top row and column) in an SB_SPRAM256KA.
    """

    share: int
    spram: frozenset = frozenset()

    def memories(self, rows, cols, depth, weight_bits, rom=False):
        """The memories that are not in SPRAM (:class:`~convaccel.hdl.stage.MemoryShape`, one
        per distinct width; ROMs with `rom`, fixed weights), and the count of those that are:
        ``(shapes, spram)``."""
        widths = {}
        for r, n in weight_groups(rows, self.share):
            for c in range(cols):
                if (r, c) not in self.spram:
                    widths[n * weight_bits] = widths.get(n * weight_bits, 0) + 1
        shapes = tuple(MemoryShape("PE weights", w, depth, count, rom=rom)
                       for w, count in sorted(widths.items(), reverse=True))
        return shapes, len(self.spram)

    def delay_bits(self, rows, cols, weight_bits):
        """Flip-flops of the lanes' delays: lane ``i`` of a memory waits ``i`` cycles."""
        return cols * sum(n * (n - 1) // 2 for _, n in weight_groups(rows, self.share)) \
            * weight_bits


def weight_placement(*, rows, cols, depth, weight_bits, paired, family=None, spram=0):
    """The one decision of where the weights of a ``rows x cols`` array live.

    Every sharing factor that fits a block RAM's widest port is costed as Yosys maps it
    (:func:`convaccel.boards.mapping.bram_blocks`), with the SPRAMs (`spram` of them: 0 but on
    an iCE40 UltraPlus) taking the memories that free the most block RAMs: those of at most
    16 bits (two 8-bit lanes) that would otherwise take a block RAM. The placement with the
    fewest block RAMs wins, then the fewest SPRAMs, then the fewest delay flip-flops (the
    smaller sharing factor). With no `family` (simulation) the memories are as the array has
    always had them: a pair's shared, no SPRAM.

    Parameters
    ----------
    rows, cols, depth, weight_bits : int
        The array and its memories' depth (fold addresses) and weight width.
    paired : bool
        The array pairs rows ``2i, 2i + 1`` on dual multipliers (then ``share`` is even, so
        that a pair's lanes come from one memory).
    family : str or None
    spram : int
        SB_SPRAM256KA blocks free for weights.
    """
    if family is None or (paired and rows < 2):
        return WeightPlacement(2 if paired and rows > 1 else 1)
    from ..boards.mapping import FAMILY_MAPPING, bram_blocks
    widest = max(w for w, _ in FAMILY_MAPPING[family].bram_configs)
    best = None
    for share in range(1, min(MAX_SHARE, rows) + 1):
        if share > 1 and share * weight_bits > widest:
            break
        if paired and share % 2:
            continue                    # (a pair's lanes are read together)
        groups = [(r, c, n) for r, n in weight_groups(rows, share) for c in range(cols)]
        blocks = {(r, c): bram_blocks(family, n * weight_bits, depth) for r, c, n in groups}
        # the SPRAMs take the memories that free the most block RAMs (first in array order)
        movable = sorted((g for g in groups if blocks[g[:2]] and spram_fits(g[2], weight_bits,
                                                                            depth)),
                         key=lambda g: (-blocks[g[:2]], g[1], g[0]))
        chosen = frozenset(g[:2] for g in movable[:spram])
        placement = WeightPlacement(share, chosen)
        cost = (sum(b for g, b in blocks.items() if g not in chosen), len(chosen),
                placement.delay_bits(rows, cols, weight_bits))
        if best is None or cost < best[0]:
            best = (cost, placement)
    return best[1]


class WeightMemory(wiring.Component):
    """The weights of ``lanes`` consecutive PEs of a column, read at the top PE's address.

    Latency: the address given in cycle ``T`` reads lane ``i``'s weight in cycle ``T + 1 + i``
    (a synchronous read, then ``i`` registers): the cycle in which row ``r0 + i``, which sees
    the vector ``i`` cycles after row ``r0``, needs it.

    In block RAM (``spram=False``) a memory of ``lanes`` weights a word with a lane-wide write
    enable. In SPRAM (``spram=True``) one SB_SPRAM256KA on an iCE40 platform, each lane in its
    own nibbles (:func:`spram_fits`), addressed by the write address while any lane is written
    (the write registered: it lands a cycle after it is given) and by ``addr`` otherwise;
    elsewhere (simulation) a behavioural model of that single port.
    Its read data after a write is undefined until the next read (the engine never loads
    during a frame).

    Parameters
    ----------
    depth : int
    weight_shape : shape-castable
    lanes : int
    spram : bool
    init : sequence of sequences of int, or None
        Fixed weights (a network's, in block RAM: an SPRAM cannot be initialized), ``depth``
        words of ``lanes`` weights: a ROM, the write port unused.

    Members
    -------
    addr : In(range(depth))
        The read address (the top PE's fold address).
    w : Out(data.ArrayLayout(weight_shape, lanes))
        Each lane's weight, lane ``i`` ``i`` cycles after lane 0.
    w_addr, w_data : In
    w_en : In(lanes)
        The write port: one weight, written into the lanes enabled.
    """

    def __init__(self, *, depth, weight_shape, lanes, spram=False, init=None):
        assert init is None or (not spram and len(init) == depth)
        self._init = init
        if spram and not spram_fits(lanes, Shape.cast(weight_shape).width, depth):
            raise ValueError(f"{lanes} lanes of {Shape.cast(weight_shape).width} bits at depth "
                             f"{depth} do not fit an SB_SPRAM256KA (16 bits of whole nibbles, "
                             f"{SPRAM_DEPTH} words)")
        self._depth = depth
        self._weight_shape = weight_shape
        self._lanes = lanes
        self._spram = spram
        super().__init__({
            "addr": In(range(depth)),
            "w": Out(data.ArrayLayout(weight_shape, lanes)),
            "w_addr": In(range(depth)),
            "w_data": In(weight_shape),
            "w_en": In(lanes),
        })

    latency = 1

    @property
    def memories(self):
        if self._spram:
            return ()
        return (MemoryShape("PE weights", self._lanes * Shape.cast(self._weight_shape).width,
                            self._depth, rom=self._init is not None),)

    def _spram_instance(self, m, word_in, w_addr, w_en, read):
        """One SB_SPRAM256KA: `word_in` written at `w_addr` under the lanes' (`w_en`) nibble
        masks, `read` (a word) the data at the address of the cycle before."""
        width = Shape.cast(self._weight_shape).width
        slot = _slot(width)
        address = Signal(14)
        writing = w_en.any()
        m.d.comb += address.eq(Mux(writing, w_addr, self.addr))
        mask = Signal(4)
        m.d.comb += mask.eq(Cat(*(w_en[lane].replicate(slot // 4)
                                  for lane in range(self._lanes))))
        m.submodules.spram = Instance(
            "SB_SPRAM256KA",
            i_ADDRESS=address, i_DATAIN=word_in, i_MASKWREN=mask, i_WREN=writing,
            i_CHIPSELECT=C(1, 1), i_CLOCK=ClockSignal(), i_STANDBY=C(0, 1), i_SLEEP=C(0, 1),
            i_POWEROFF=C(1, 1),         # (active low: powered)
            o_DATAOUT=read)

    def elaborate(self, platform):
        m = Module()
        width = Shape.cast(self._weight_shape).width
        lanes = self._lanes
        words = []                      # each lane's weight as read, in cycle T + 1
        if self._spram:
            slot = _slot(width)
            # The write is registered on its way in: the load's handshake (which decides the
            # enables) then ends at flip-flops, not at the SPRAM's address multiplexer and
            # pins. A weight lands a cycle after its beat; no frame reads one that soon.
            word_in = Signal(SPRAM_WIDTH)
            w_addr = Signal.like(self.w_addr)
            w_en = Signal.like(self.w_en)
            m.d.sync += [
                word_in.eq(Cat(*(Cat(self.w_data[:width], C(0, slot - width))
                                 for _ in range(lanes)))),
                w_addr.eq(self.w_addr), w_en.eq(self.w_en),
            ]
            read = Signal(SPRAM_WIDTH)
            if isinstance(platform, SiliconBluePlatform):
                self._spram_instance(m, word_in, w_addr, w_en, read)
            else:
                # The single port's behaviour: one address, a write or a read per cycle.
                m.submodules.weights = weights = memory.Memory(
                    shape=data.ArrayLayout(slot, SPRAM_WIDTH // slot), depth=self._depth,
                    init=[])
                wr = weights.write_port(granularity=1)
                rd = weights.read_port()
                address = Mux(w_en.any(), w_addr, self.addr)
                m.d.comb += [
                    wr.addr.eq(address), rd.addr.eq(address), rd.en.eq(~w_en.any()),
                    wr.data.as_value().eq(word_in), wr.en.eq(w_en),
                    read.eq(rd.data.as_value()),
                ]
            words = [read[n * slot:n * slot + width] for n in range(lanes)]
        else:
            m.submodules.weights = weights = memory.Memory(
                shape=data.ArrayLayout(self._weight_shape, lanes), depth=self._depth,
                init=self._init or [])
            if self._init is None:
                wr = weights.write_port(granularity=1)
                m.d.comb += [wr.addr.eq(self.w_addr), wr.en.eq(self.w_en)]
                m.d.comb += [wr.data[n].eq(self.w_data) for n in range(lanes)]
            rd = weights.read_port()
            m.d.comb += rd.addr.eq(self.addr)
            words = [rd.data[n] for n in range(lanes)]
        for lane, word in enumerate(words):
            value = word
            for n in range(lane):
                reg = Signal(width, name=f"lane{lane}_d{n + 1}", reset_less=True)
                m.d.sync += reg.eq(value)
                value = reg
            m.d.comb += self.w[lane].eq(value)
        return m
