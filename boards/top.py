"""The board top: the engine's host (the serial link or the self-test) on a board's clock
(through a PLL), reset, LEDs and serial pins."""

from amaranth import *
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ..link.gateware import SerialAccelerator
from .pll import pll_instance, pll_params
from .selftest import SelfTest

__all__ = ["LED_ROLES", "POR_CYCLES", "BoardCore", "BoardTop", "clock_and_reset", "link_divisor"]

#: Cycles the engine stays in reset after the PLL locks. iCE40 block RAM reads are not valid
#: for about 3 µs after configuration; at the fastest clock this covers it several times.
POR_CYCLES = 1 << 12

#: What an LED can show; a board's registry entry says which of its LEDs shows what.
LED_ROLES = ("pass", "fail", "busy", "done", "error", "heartbeat")


def link_divisor(f_mhz, baud):
    """Clock cycles per UART bit at `f_mhz`, checked: the bit time must be within 2 % of the
    baud rate's and at least 4 cycles."""
    if isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"--baud must be a positive integer, like 115200, not {baud!r}")
    divisor = round(f_mhz * 1e6 / baud)
    error = abs(f_mhz * 1e6 / divisor - baud) / baud if divisor else 1
    if divisor < 4 or error > 0.02:
        fastest = int(f_mhz * 1e6 / 4)
        raise ValueError(f"--baud {baud} cannot be made from a {f_mhz:g} MHz clock (at most "
                         f"{fastest} baud, to within 2 %); use e.g. 115200, 1000000 or 3000000 "
                         f"if the clock allows")
    return divisor


class BoardCore(wiring.Component):
    """A board top without its clock, reset and pin buffers: the engine's host, the serial
    receive pin's synchronizer and what each LED shows.

    ``convaccel run --simulate`` simulates this very component, so the rehearsal covers
    everything on the board but the PLL, the power-on reset and the I/O buffers.

    With the serial link (`app` a :class:`~convaccel.link.gateware.SerialAccelerator`), the LEDs
    show the weights loaded ("pass"), the error flag ("fail", "error"), busy, done and a
    heartbeat; with the self-test (a :class:`SelfTest`), pass, fail, busy, done, error and a
    slow blink while frames keep completing. Without the link, ``tx`` stays idle (mark).

    Parameters
    ----------
    app : SerialAccelerator or SelfTest

    Members
    -------
    rx : In(1, init=1)
        The serial receive pin, asynchronous to the clock (synchronized here).
    tx : Out(1, init=1)
    led_pass, led_fail, led_busy, led_done, led_error, led_heartbeat : Out(1)
    """

    def __init__(self, app):
        if not isinstance(app, (SerialAccelerator, SelfTest)):
            raise TypeError(f"BoardCore app must be a SerialAccelerator or a SelfTest, "
                            f"not {app!r}")
        self._app = app
        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            **{f"led_{role}": Out(1) for role in LED_ROLES},
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.app = app = self._app
        if isinstance(app, SerialAccelerator):
            m.submodules.rx_sync = FFSynchronizer(self.rx, app.rx, init=1)
            m.d.comb += self.tx.eq(app.tx)
            alive = Signal(24)
            m.d.sync += alive.eq(alive + 1)
            status = {"pass": app.loaded, "fail": app.error, "busy": app.busy,
                      "heartbeat": alive[-1], "done": app.done, "error": app.error}
        else:
            m.d.comb += self.tx.eq(1)
            status = {
                "pass": app.passed,
                "fail": app.failed,
                "busy": app.busy,
                # Frames complete thousands of times a second; bit 12 of their count toggles
                # slowly enough to see that the test keeps running.
                "heartbeat": app.frames[12],
                "done": app.done,
                "error": app.error,
            }
        m.d.comb += [getattr(self, f"led_{role}").eq(status[role]) for role in LED_ROLES]
        return m


def clock_and_reset(m, platform, board, pll):
    """Define the ``sync`` domain of the top module `m`: `board`'s oscillator through `pll`
    (:func:`~.pll.pll_instance`), held in reset until the PLL has locked and then for
    ``POR_CYCLES`` more (its logic in a submodule ``cd_sync``). nextpnr derives the engine
    clock's constraint through the PLL from the oscillator's."""
    m.submodules.cd_sync = crg = Module()
    clk_port = platform.request(platform.default_clk, dir="-")
    if board.pll_pad:
        clk_in = clk_port.io                     # SB_PLL40_PAD takes the pin itself
    else:
        crg.submodules.clk_buf = clk_buf = io.Buffer("i", clk_port)
        clk_in = clk_buf.i
    # The domains are defined in the top, their logic in `cd_sync`.
    m.domains.sync = cd_sync = ClockDomain("sync")
    m.domains.por = cd_por = ClockDomain("por", reset_less=True, local=True)
    locked = Signal()
    crg.submodules.pll = pll_instance(pll, clk_in, cd_sync.clk, locked, pad=board.pll_pad)
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


class BoardTop(Elaboratable):
    """The engine on a board: behind its serial host link, or running its built-in self-test.

    The board oscillator drives a PLL that makes the engine clock (`f_mhz`); the ``sync``
    domain is held in reset until the PLL has locked and :data:`POR_CYCLES` more cycles have
    passed. The rest is a :class:`BoardCore` holding the host link
    (:class:`~convaccel.link.gateware.SerialAccelerator` on ``uart`` 0, at `baud`) or the self-test
    (:class:`SelfTest`), its serial pins and LEDs through I/O buffers (the LEDs the board lists;
    :class:`BoardCore` says what each shows).

    A plain ``Elaboratable``, not a component: it calls ``platform.request``.

    Parameters
    ----------
    board : Board
    spec : ConvSpec
    f_mhz : float
        The requested engine clock; :attr:`pll` holds the one the PLL makes.
    app : ``"link"`` or ``"selftest"``
    baud : int
        The link's baud rate.
    x, w, b : array
        The self-test's frame, weights and bias.
    expected : array or None
        Passed to :class:`SelfTest`.
    engine : component or None
        With the link, what computes (:class:`~convaccel.link.gateware.HostLink`'s
        ``engine``: a network's :class:`~convaccel.link.network.NetworkEngine`, `spec` its
        :class:`~convaccel.link.network.NetworkLinkSpec`).
    """

    def __init__(self, board, spec, x=None, w=None, b=None, *, f_mhz, app="selftest",
                 baud=115200, expected=None, engine=None):
        self._board = board
        self.pll = pll_params(board.family, board.clock_mhz, f_mhz)
        if app == "link":
            if not board.uart:
                raise ValueError(f"The {board.title} has no USB-serial port for the host link; "
                                 f"build the self-test instead")
            self.divisor = link_divisor(self.pll.f_out, baud)
            self.app = SerialAccelerator(spec, divisor=self.divisor, engine=engine,
                                         family=board.family)
        elif app == "selftest":
            self.app = SelfTest(spec, x, w, b, expected=expected)
        else:
            raise ValueError(f"app must be 'link' or 'selftest', not {app!r}")

    def elaborate(self, platform):
        m = Module()
        board = self._board

        # -- clock and reset -------------------------------------------------------------------
        clock_and_reset(m, platform, board, self.pll)

        # -- the engine's host, its LEDs and its serial pins -----------------------------------
        m.submodules.core = core = BoardCore(self.app)
        requested = {}
        for role, where in board.leds.items():
            name, number, *sub = where
            if (name, number) not in requested:
                requested[name, number] = platform.request(name, number, dir="-")
            port = requested[name, number]
            if sub:
                port = getattr(port, sub[0])
            m.submodules[f"led_{role}"] = led = io.Buffer("o", port)
            m.d.comb += led.o.eq(getattr(core, f"led_{role}"))
        if board.uart:
            uart = platform.request("uart", 0, dir="-")
            m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
            m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
            m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        return m
