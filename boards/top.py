"""The board top: the self-test on a board's clock (through a PLL), reset and LEDs."""

from amaranth import *
from amaranth.lib import io
from amaranth.lib.cdc import FFSynchronizer

from .pll import pll_instance, pll_params
from .selftest import SelfTest

__all__ = ["POR_CYCLES", "BoardTop"]

#: Cycles the engine stays in reset after the PLL locks. iCE40 block RAM reads are not valid
#: for about 3 µs after configuration; at the fastest clock this covers it several times.
POR_CYCLES = 1 << 12


class BoardTop(Elaboratable):
    """:class:`SelfTest` on a board.

    The board oscillator drives a PLL that makes the engine clock (`f_mhz`); the ``sync``
    domain is held in reset until the PLL has locked and :data:`POR_CYCLES` more cycles have
    passed. The LEDs the board lists show pass, fail, busy, done, error and a heartbeat (a slow
    blink while frames keep completing). The host link's pins (``uart`` 0) are claimed
    and the transmitter held idle until the link lands.

    A plain ``Elaboratable``, not a component: it calls ``platform.request``.

    Parameters
    ----------
    board : Board
    spec : ConvSpec
    x, w, b : array
        The self-test's frame, weights and bias.
    f_mhz : float
        The requested engine clock; :attr:`pll` holds the one the PLL makes.
    expected : array or None
        Passed to :class:`SelfTest`.
    """

    def __init__(self, board, spec, x, w, b, *, f_mhz, expected=None):
        self._board = board
        self._spec = spec
        self.selftest = SelfTest(spec, x, w, b, expected=expected)
        self.pll = pll_params(board.family, board.clock_mhz, f_mhz)

    def elaborate(self, platform):
        m = Module()
        board = self._board

        # -- clock and reset -------------------------------------------------------------------
        m.submodules.cd_sync = crg = Module()
        clk_port = platform.request(platform.default_clk, dir="-")
        if board.pll_pad:
            clk_in = clk_port.io                     # SB_PLL40_PAD takes the pin itself
        else:
            crg.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
            clk_in = clk_buf.i
        # The domains are defined here, in the top, their logic in `cd_sync`. nextpnr derives
        # the engine clock's constraint through the PLL from the oscillator's.
        m.domains.sync = cd_sync = ClockDomain("sync")
        m.domains.por = cd_por = ClockDomain("por", reset_less=True, local=True)
        locked = Signal()
        crg.submodules.pll = pll_instance(self.pll, clk_in, cd_sync.clk, locked,
                                          pad=board.pll_pad)
        crg.d.comb += cd_por.clk.eq(cd_sync.clk)
        locked_sync = Signal()
        crg.submodules.locked_sync = FFSynchronizer(locked, locked_sync, o_domain="por")
        timer = Signal(range(POR_CYCLES), init=POR_CYCLES - 1)
        with crg.If(~locked_sync):
            crg.d.por += timer.eq(POR_CYCLES - 1)
        with crg.Elif(timer != 0):
            crg.d.por += timer.eq(timer - 1)
        # The reset leaves a register: it fans out to every flip-flop of the engine.
        reset = Signal(init=1)
        crg.d.por += reset.eq(timer != 0)
        crg.d.comb += ResetSignal("sync").eq(reset)

        # -- the self-test and its LEDs --------------------------------------------------------
        m.submodules.selftest = selftest = self.selftest
        status = {
            "pass": selftest.passed,
            "fail": selftest.failed,
            "busy": selftest.busy,
            # Frames complete thousands of times a second; bit 12 of their count toggles
            # slowly enough to see that the test keeps running.
            "heartbeat": selftest.frames[12],
            "done": selftest.done,
            "error": selftest.error,
        }
        requested = {}
        for role, where in board.leds.items():
            name, number, *sub = where
            if (name, number) not in requested:
                requested[name, number] = platform.request(name, number, dir="-")
            port = requested[name, number]
            if sub:
                port = getattr(port, sub[0])
            m.submodules[f"led_{role}"] = led = io.Buffer("o", port)
            m.d.comb += led.o.eq(status[role])

        # -- the host link's pins (the link is its own piece of work) --------------------------
        if board.uart:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
            m.d.comb += tx.o.eq(1)                   # idle (mark)
        return m
