"""Shared by the link's tests: the STATUS payload packed by hand, as docs/protocol.md tables it
(independent of :data:`convaccel.link.protocol.STATUS`), and a byte-stream driver."""

#: The STATUS payload's fields: (field, bytes), on the wire in this order.
STATUS_WIRE = (("flags", 1), ("results_ready", 2), ("beats_loaded", 2), ("pixels_sent", 4),
               ("cycles", 4), ("input_stalls", 4), ("output_stalls", 4), ("macs", 8))

#: The flags byte's bits.
FLAG_BITS = {"busy": 0, "done": 1, "error": 2, "loaded": 3, "pending": 4}


def status_wire(fields, flags=()):
    """The documented STATUS bytes: the flags byte, then each field big-endian (absent fields
    zero)."""
    values = {**fields, "flags": sum(1 << FLAG_BITS[name] for name in flags)}
    return b"".join(values.get(name, 0).to_bytes(size, "big") for name, size in STATUS_WIRE)


async def feed(ctx, port, data, idle=None):
    """Offer `data` on the always-ready byte stream `port`, a byte per cycle, after idle
    cycles drawn from `idle`."""
    for byte in data:
        while idle is not None and next(idle):
            ctx.set(port.valid, 0)
            await ctx.tick()
        ctx.set(port.payload, byte)
        ctx.set(port.valid, 1)
        await ctx.tick()
    ctx.set(port.valid, 0)
