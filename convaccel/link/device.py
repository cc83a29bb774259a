"""The host driver: talks to an accelerator over its serial link.

The same code drives a real board (through pyserial) and the simulated board (through a
transport that moves bytes in and out of the simulated UART pins).
"""

import os
import time

from ..beats import weight_beats
from ..golden import check_array, resolve_pad
from .protocol import (
    MAX_PAYLOAD,
    RESPONSE_START,
    Command,
    LinkFormat,
    Status,
    crc16,
    decode_status,
    encode_request,
)

__all__ = ["Device", "DeviceError", "DeviceTimeout", "NetworkDevice"]


class DeviceError(RuntimeError):
    """The device refused a request (``status`` holds its code) or answered nonsense."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


class DeviceTimeout(DeviceError):
    """The device did not answer in time."""


#: Refusals that say the packet was damaged on the way: sending it again may succeed.
RETRYABLE = (Status.BAD_CRC, Status.TIMEOUT)


class Device:
    """An accelerator for ``spec`` on the other end of ``port``.

    ``port`` is a serial port name (opened with pyserial at ``baudrate``) or any object with
    pyserial's ``write(bytes)`` and ``read(n)`` (which returns fewer bytes on a timeout).
    Requests refused as damaged (BAD_CRC, TIMEOUT) are sent again, up to ``retries`` times;
    other refusals raise :class:`DeviceError`; no answer within ``timeout`` seconds raises
    :class:`DeviceTimeout`.
    """

    def __init__(self, port, spec, *, baudrate=115200, timeout=2.0, retries=3,
                 max_payload=MAX_PAYLOAD):
        if isinstance(port, str):
            import serial
            try:
                port = serial.Serial(port, baudrate, timeout=timeout)
            except serial.SerialException as e:
                from serial.tools.list_ports import comports
                ports = sorted(p.device for p in comports())
                found = (f"serial ports here: {', '.join(ports)}" if ports else
                         "no serial port here; is the board plugged in?")
                reason = os.strerror(e.errno) if e.errno else str(e)
                raise DeviceError(f"cannot open the serial port {port}: {reason}; {found}") \
                    from None
        self.port = port
        self.spec = spec
        self.format = LinkFormat(spec, max_payload)
        self.retries = retries
        self.timeout = timeout
        self.bytes_sent = 0
        self.bytes_received = 0
        self.resent = 0
        self._loaded = None           # the arrays of the last load, for pad reloads
        self._pads = None             # and its pad values

    # -- packets ---------------------------------------------------------------------------------

    def _read_exact(self, n):
        try:
            data = self.port.read(n)
        except OSError as e:                 # (pyserial's SerialException is one)
            raise DeviceError(f"the serial port failed while reading: {e}") from None
        self.bytes_received += len(data)
        if len(data) < n:
            raise DeviceTimeout(f"the device did not answer within {self.timeout} s")
        return data

    def read_response(self):
        """The next response: (command, status, payload). Bytes before its start are skipped."""
        while self._read_exact(1)[0] != RESPONSE_START:
            pass
        header = self._read_exact(4)
        length = int.from_bytes(header[2:4], "big")
        payload = self._read_exact(length)
        crc = int.from_bytes(self._read_exact(2), "big")
        if crc != crc16(header + payload):
            raise DeviceError("a response arrived damaged (CRC mismatch)")
        return header[0], Status(header[1]), payload

    def send_raw(self, data):
        try:
            self.port.write(bytes(data))
        except OSError as e:
            raise DeviceError(f"the serial port failed while writing: {e}") from None
        self.bytes_sent += len(data)

    def request(self, command, payload=b"", *, accept=(Status.OK,)):
        """Send a request and return (status, payload) of its answer.

        Damaged requests are resent; a status outside ``accept`` raises :class:`DeviceError`.
        """
        packet = encode_request(command, payload)
        for attempt in range(self.retries + 1):
            self.send_raw(packet)
            while True:
                answered, status, data = self.read_response()
                if answered == command or status in RETRYABLE:
                    break                # (a stale answer to something else is skipped)
            if status not in RETRYABLE:
                break
            self.resent += 1
        if status not in accept:
            raise DeviceError(f"{Command(command).name} refused: {status.name}", status)
        return status, data

    # -- operations ------------------------------------------------------------------------------

    def reset(self):
        """Reset the engine and the link; the weights must be loaded again."""
        self.request(Command.RESET)

    def status(self):
        """Flags, counts and the performance counters of the current or last frame."""
        _, data = self.request(Command.STATUS)
        try:
            return decode_status(data)
        except ValueError as e:
            raise DeviceError(str(e)) from None

    def load(self, w, b=None, requant=None, pad=None):
        """Load weights ``(C_out, C_in, K_h, K_w)``, bias ``(C_out,)`` and, for a requantized
        layer, its :class:`~convaccel.quant.Requant`; for a layer with run-time pad values,
        ``pad`` (one value, or one per input channel; default the layer's ``pad_value``)."""
        beats = weight_beats(w, b, self.spec, requant, pad)
        self._loaded = (w, b, requant)
        self._pads = resolve_pad(self.spec, pad)
        for payload in self.format.weight_payloads(beats):
            self._send_chunk(Command.LOAD, payload)

    def _send_chunk(self, command, payload, results=None, wanted=0):
        while True:
            status, _ = self.request(command, payload, accept=(Status.OK, Status.BUSY))
            if status == Status.OK:
                return
            # BUSY: the previous chunk waits for the engine, which waits for us to read.
            if results is not None:
                results += self._read(wanted - len(results))

    def _read(self, wanted):
        if wanted <= 0:
            return []
        count = min(wanted, self.format.max_read())
        _, data = self.request(Command.READ, count.to_bytes(2, "big"))
        return self.format.results(data)

    def run(self, x, pad=None):
        """Send the frame ``x`` ``(C_in, H, W)`` and return the result ``(C_out, H_out, W_out)``.

        ``pad``, for a layer with run-time pad values, pads this frame: values, or ``"mean"``
        (each channel's mean over ``x``, rounded halves away from zero:
        :func:`convaccel.golden.pad_mean`). The pad values come last in the weight load, so
        the last load is sent again with them before the frame, unless it holds them
        already."""
        if pad is not None:
            if self._loaded is None:
                raise DeviceError("load the weights before run(x, pad=...): the pad values "
                                  "travel with them")
            x = check_array("x", x, self.spec.input_shape, self.spec.input_range,
                            "in_channels, height, width")
            values = resolve_pad(self.spec, pad, x)
            if values != self._pads:
                self.load(*self._loaded, values)
        return self.format.result_array(self._exchange(self.format.pixels(x),
                                                       self.spec.output_pixels))

    def _exchange(self, pixels, wanted):
        """Send a frame's `pixels` (:meth:`LinkFormat.pixels`) and return its `wanted` result
        pixels (lists of values), read as they come."""
        results = []
        for payload in self.format.frame_payloads(pixels):
            self._send_chunk(Command.FRAME, payload, results, wanted)
            results += self._read(wanted - len(results))
        deadline = time.monotonic() + max(self.timeout, 1.0) * 10
        while len(results) < wanted:
            got = self._read(wanted - len(results))
            if not got and time.monotonic() > deadline:
                raise DeviceTimeout(f"only {len(results)} of {wanted} result pixels arrived")
            results += got
        return results


class NetworkDevice(Device):
    """A network (a :class:`~convaccel.compiler.NetworkPlan`) on the other end of ``port``,
    behind the same link (:class:`~convaccel.link.network.NetworkEngine`): its weights are in
    ROMs, so there is nothing to load; :meth:`run` sends the input tensor and returns the
    output tensor, both as the LiteRT interpreter's (NHWC int8). Other parameters as for
    :class:`Device`."""

    def __init__(self, port, plan, **options):
        from .network import NetworkLinkSpec
        super().__init__(port, NetworkLinkSpec(plan), **options)
        self.plan = plan

    def load(self, *args, **kwargs):
        raise DeviceError("a network's weights are in the board's ROMs: there is nothing to "
                          "load")

    def run(self, x):
        """Send the input tensor ``x`` and return the output tensor."""
        from ..hdl.nettop import output_tensor
        from ..network import to_project
        x = self.plan.network.check_input(x)
        beats = self._exchange(self.format.pixels(to_project(x)), self.spec.output_pixels)
        return output_tensor(self.plan, beats)
