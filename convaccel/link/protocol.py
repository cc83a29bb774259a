"""The host link's framed protocol: constants, framing, CRC, and the payload formats.

One definition for the gateware (:mod:`convaccel.link.gateware`), the host driver
(:class:`convaccel.link.device.Device`) and the documentation (``docs/protocol.md``).

A request is ``A5 | command | length (2 bytes) | payload | CRC-16 (2 bytes)``; a response is
``5A | command | status | length (2 bytes) | payload | CRC-16 (2 bytes)``. Every multi-byte
field, and every number in a payload, is big-endian. The CRC is CRC-16/IBM-3740 (also called
CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF) over everything after the start byte.
"""

import enum
import math

import numpy as np

from amaranth.lib import data
from amaranth.lib.crc import catalog

from ..golden import check_array

__all__ = [
    "CRC",
    "FLAGS",
    "MAX_PAYLOAD",
    "REQUEST_START",
    "RESPONSE_START",
    "STATUS",
    "STATUS_BYTES",
    "Command",
    "LinkFormat",
    "Status",
    "crc16",
    "decode_status",
    "encode_request",
    "encode_response",
]

REQUEST_START = 0xA5
RESPONSE_START = 0x5A

#: The largest payload of a request or a response, in bytes: a link's default (the size of
#: each of its packet buffers), and what the host driver assumes unless told otherwise.
MAX_PAYLOAD = 1024

#: The CRC, in software (the same parameters build the gateware's CRC processor).
CRC = catalog.CRC16_IBM_3740(data_width=8)


def crc16(data):
    return CRC.compute(bytes(data))


class Command(enum.IntEnum):
    LOAD = 0x01      # weight-load beats (a load may span several packets)
    FRAME = 0x02     # input pixels (a frame may span several packets)
    READ = 0x03      # payload: the most result pixels wanted (2 bytes); returns what is ready
    STATUS = 0x04    # returns flags, counts and the performance counters
    RESET = 0x05     # resets the engine and the link: weights, frame and results are dropped


class Status(enum.IntEnum):
    OK = 0x00
    BAD_CRC = 0x01          # the packet's CRC did not match: nothing was done
    BAD_LENGTH = 0x02       # too long, not whole beats/pixels, or more than the load/frame needs
    UNKNOWN_COMMAND = 0x03
    BAD_STATE = 0x04        # e.g. a frame before the weights, or a load during a frame
    BUSY = 0x05             # the previous chunk is still entering the engine: read, then retry
    TIMEOUT = 0x06          # the packet stopped arriving (truncated): it was dropped


#: The STATUS payload's flags byte. (A :class:`~amaranth.lib.data.StructLayout`'s first field
#: is its least significant bit: ``busy`` is bit 0.)
FLAGS = data.StructLayout({
    "busy": 1,              # a frame in progress
    "done": 1,              # the last frame is done
    "error": 1,             # sticky: the engine's error flag or a value out of its range
    "loaded": 1,            # the weights are loaded
    "pending": 1,           # a chunk is still entering the engine
    "reserved": 3,          # zero
})

#: The STATUS response payload, one definition for the gateware and the host. On the wire its
#: fields go flags first, each big-endian; a layout's first field is its least significant
#: bits, so they are declared here in reverse: the payload is the whole value as one
#: big-endian number (``STATUS.from_bits(int.from_bytes(payload, "big"))``).
STATUS = data.StructLayout({
    "macs": 64,             # multiply-accumulates of the frame
    "output_stalls": 32,    # cycles in which a result waited to be taken
    "input_stalls": 32,     # cycles in which the engine waited for input
    "cycles": 32,           # cycles of the current or last frame
    "pixels_sent": 32,      # pixels received of the frame in progress
    "beats_loaded": 16,     # weight-load beats received of the load in progress
    "results_ready": 16,    # result pixels waiting to be read
    "flags": FLAGS,
})

#: Bytes of the STATUS payload.
STATUS_BYTES = STATUS.size // 8


def decode_status(payload):
    """A STATUS payload as a dict: its counts, then its flags as booleans (wire order)."""
    if len(payload) != STATUS_BYTES:
        raise ValueError(f"A STATUS payload has {STATUS_BYTES} bytes, not {len(payload)}")
    view = STATUS.from_bits(int.from_bytes(payload, "big"))
    fields = {name: view[name] for name, _ in reversed(list(STATUS)) if name != "flags"}
    fields.update((name, bool(view.flags[name])) for name, _ in FLAGS if name != "reserved")
    return fields


def encode_request(command, payload=b""):
    body = bytes([int(command)]) + len(payload).to_bytes(2, "big") + bytes(payload)
    return bytes([REQUEST_START]) + body + crc16(body).to_bytes(2, "big")


def encode_response(command, status, payload=b""):
    body = bytes([int(command), int(status)]) + len(payload).to_bytes(2, "big") + bytes(payload)
    return bytes([RESPONSE_START]) + body + crc16(body).to_bytes(2, "big")


class LinkFormat:
    """How a spec's beats travel as bytes: every value big-endian two's complement in whole
    bytes (``weight_bytes`` per weight-load beat, ``input_bytes`` per input channel,
    ``result_bytes`` per output channel), pixels with channel 0 first."""

    def __init__(self, spec, max_payload=MAX_PAYLOAD):
        self.spec = spec
        self.max_payload = max_payload
        self.weight_bytes = math.ceil(spec.load_bits / 8)
        self.input_bytes = math.ceil(spec.input_bits / 8)
        self.result_bytes = math.ceil(spec.output_bits / 8)
        self.pixel_bytes = self.input_bytes * spec.in_channels
        self.result_pixel_bytes = self.result_bytes * spec.out_channels
        if self.result_pixel_bytes > max_payload or self.pixel_bytes > max_payload:
            raise ValueError(f"max_payload {max_payload} cannot hold one pixel "
                             f"({max(self.pixel_bytes, self.result_pixel_bytes)} bytes)")

    @staticmethod
    def _pack(values, size, signed=True):
        return b"".join(int(v).to_bytes(size, "big", signed=signed) for v in values)

    def weight_payloads(self, beats):
        """LOAD payloads for weight-load beats ``(value, last)``."""
        per = self.max_payload // self.weight_bytes
        values = [v for v, _ in beats]
        return [self._pack(values[n:n + per], self.weight_bytes)
                for n in range(0, len(values), per)]

    def pixels(self, x):
        """The frame `x` (``(in_channels, height, width)``) as the wire carries it, whatever
        the engine's beats are: ``(channels, last)`` per pixel, raster order."""
        spec = self.spec
        x = check_array("x", x, spec.input_shape, spec.input_range,
                        "in_channels, height, width")
        pixels = x.reshape(spec.in_channels, -1).T
        return [([int(v) for v in pixel], n == len(pixels) - 1)
                for n, pixel in enumerate(pixels)]

    def result_array(self, pixels):
        """The output array from result pixels (lists of ``out_channels`` integers, raster
        order), as READ returns them."""
        spec = self.spec
        if len(pixels) != spec.output_pixels:
            raise ValueError(f"a frame has {spec.output_pixels} result pixels, not "
                             f"{len(pixels)}")
        return np.array(pixels, dtype=np.int64).T.reshape(spec.output_shape)

    def frame_payloads(self, pixels, per=None):
        """FRAME payloads for pixels ``(channels, last)`` (:meth:`pixels`)."""
        per = per or self.max_payload // self.pixel_bytes
        signed = self.spec.input_signed
        return [b"".join(self._pack(c, self.input_bytes, signed) for c, _ in pixels[n:n + per])
                for n in range(0, len(pixels), per)]

    def max_read(self):
        return self.max_payload // self.result_pixel_bytes

    def results(self, payload):
        """Result pixels (lists of out_channels integers) from a READ payload."""
        size = self.result_bytes
        values = [int.from_bytes(payload[n:n + size], "big", signed=True)
                  for n in range(0, len(payload), size)]
        channels = self.spec.out_channels
        return [values[n:n + channels] for n in range(0, len(values), channels)]
