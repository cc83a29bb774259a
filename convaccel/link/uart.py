from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


class UARTRx(wiring.Component):
    """Receives 8N1 serial bytes.

    The line is synchronized (two flip-flops), a start bit is confirmed at its middle, and each
    data bit is sampled at its middle; a byte whose stop bit is low (a framing error) is
    dropped. ``o`` has no back-pressure: a byte not taken before the next one ends is lost.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4.

    Members
    -------
    rx : In(1)
    o : Out(stream.Signature(8, always_ready=True))
    """

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UART divisor must be at least 4 clock cycles per bit, "
                             f"not {divisor}")
        self._divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "o": Out(stream.Signature(8, always_ready=True)),
        })

    def elaborate(self, platform):
        m = Module()
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(self._divisor))
        bits = Signal(range(10))
        shift = Signal(8)
        m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    m.d.sync += timer.eq(self._divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(line):
                        m.next = "IDLE"                # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(self._divisor - 1), bits.eq(0)]
                        m.next = "DATA"
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [timer.eq(self._divisor - 1), bits.eq(bits + 1)]
                    with m.If(bits == 8):
                        with m.If(line):               # the stop bit
                            m.d.sync += [self.o.payload.eq(shift), self.o.valid.eq(1)]
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += shift.eq(Cat(shift[1:], line))
                with m.Else():
                    m.d.sync += timer.eq(timer - 1)
        return m


class UARTTx(wiring.Component):
    """Sends 8N1 serial bytes, least significant bit first.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit.

    Members
    -------
    i : In(stream.Signature(8))
    tx : Out(1)
    """

    def __init__(self, divisor):
        self._divisor = divisor
        super().__init__({
            "i": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor))
        bits = Signal(range(11))
        shift = Signal(10)
        m.d.comb += self.i.ready.eq(bits == 0)
        with m.If(self.i.valid & self.i.ready):
            # start bit, 8 data bits, stop bit
            m.d.sync += [shift.eq(Cat(0, self.i.payload, 1)), bits.eq(10),
                         timer.eq(self._divisor - 1), self.tx.eq(0)]
        with m.Elif(bits != 0):
            with m.If(timer == 0):
                m.d.sync += [timer.eq(self._divisor - 1), bits.eq(bits - 1),
                             shift.eq(shift >> 1)]
                m.d.sync += self.tx.eq(Mux(bits == 1, 1, shift[1]))
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
