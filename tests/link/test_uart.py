# amaranth: UnusedElaboratable=no
"""UARTRx and UARTTx."""

import numpy as np
import pytest
from amaranth import Module
from simutil import gaps, run_simulation, stream_put

from convaccel.link.uart import UARTRx, UARTTx


def test_uart_loopback():
    tx, rx = UARTTx(5), UARTRx(5)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    data = [int(v) for v in np.random.default_rng(1).integers(0, 256, 40)] + [0x00, 0xFF, 0xA5]
    got = []

    async def send(ctx):
        idle = gaps(2, 0.3)
        for byte in data:
            await stream_put(ctx, tx.i, byte, idle)

    async def receive(ctx):
        while len(got) < len(data):
            _, _, valid, payload = await ctx.tick().sample(rx.o.valid, rx.o.payload)
            if valid:
                got.append(payload)

    run_simulation(m, send, receive)
    assert got == data


def test_uart_divisor_wrong():
    with pytest.raises(ValueError, match=r"^UART divisor must be at least 4 clock cycles per "
                                         r"bit, not 3$"):
        UARTRx(3)
