"""The host link: protocol, driver, and the whole exchange on the simulated board (the real
driver against the board top's serial engine under cocotb)."""

from pathlib import Path

import numpy as np
import pytest
from helpers import need_simulator, random_data
from linkutil import FLAG_BITS, STATUS_WIRE, status_wire

from convaccel import DEFAULT_SPEC, ConvSpec, golden
from convaccel.beats import weight_beats
from convaccel.link.device import Device, DeviceError
from convaccel.link.protocol import (
    MAX_PAYLOAD,
    STATUS,
    STATUS_BYTES,
    Command,
    LinkFormat,
    Status,
    crc16,
    decode_status,
    encode_request,
    encode_response,
)


def test_crc_is_ccitt_false():
    assert crc16(b"123456789") == 0x29B1
    packet = encode_request(Command.STATUS)
    assert packet == bytes([0xA5, 0x04, 0x00, 0x00]) + crc16(b"\x04\x00\x00").to_bytes(2, "big")


class ScriptedPort:
    """A port whose device answers from a script: a list of responses, one per request."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.written = []
        self.pending = b""

    def write(self, data):
        self.written.append(bytes(data))
        self.pending += self.responses.pop(0) if self.responses else b""

    def read(self, n):
        data, self.pending = self.pending[:n], self.pending[n:]
        return data


def test_driver_resends_damaged_requests():
    spec = DEFAULT_SPEC
    status_payload = status_wire({"results_ready": 3, "beats_loaded": 0, "pixels_sent": 7,
                                  "cycles": 1234, "input_stalls": 5, "output_stalls": 6,
                                  "macs": 1 << 40}, ("busy", "pending"))
    port = ScriptedPort([encode_response(Command.STATUS, Status.BAD_CRC),
                         b"\x00\x13garbage" + encode_response(Command.STATUS, Status.TIMEOUT),
                         encode_response(Command.STATUS, Status.OK, status_payload)])
    device = Device(port, spec)
    status = device.status()
    assert (status["cycles"], status["macs"], status["pixels_sent"]) == (1234, 1 << 40, 7)
    assert status["busy"] and status["pending"] and not status["done"]
    assert device.resent == 2 and len(port.written) == 3
    assert len(set(port.written)) == 1


def test_driver_gives_up_and_reports():
    port = ScriptedPort([encode_response(Command.FRAME, Status.BAD_STATE)])
    device = Device(port, DEFAULT_SPEC)
    with pytest.raises(DeviceError, match=r"^FRAME refused: BAD_STATE$"):
        device.request(Command.FRAME, b"\x00" * 4)
    port = ScriptedPort([])
    device = Device(port, DEFAULT_SPEC, timeout=0.1)
    with pytest.raises(DeviceError, match=r"did not answer"):
        device.status()


def test_driver_reports_a_vanished_port():
    # A serial port that goes away mid-run (pyserial raises SerialException, an OSError).
    import serial

    class Vanishing(ScriptedPort):
        def read(self, n):
            raise serial.SerialException("device reports readiness to read but returned no "
                                         "data (device disconnected?)")

    device = Device(Vanishing([]), DEFAULT_SPEC)
    with pytest.raises(DeviceError, match=r"^the serial port failed while reading: device "
                                          r"reports readiness"):
        device.status()

    class Unplugged(ScriptedPort):
        def write(self, data):
            raise OSError(5, "Input/output error")

    with pytest.raises(DeviceError, match=r"^the serial port failed while writing: "):
        Device(Unplugged([]), DEFAULT_SPEC).status()


def test_driver_rejects_a_damaged_response():
    response = bytearray(encode_response(Command.STATUS, Status.OK, bytes(29)))
    response[7] ^= 1
    device = Device(ScriptedPort([bytes(response)]), DEFAULT_SPEC)
    with pytest.raises(DeviceError, match=r"damaged \(CRC mismatch\)"):
        device.status()


def test_status_layout_is_the_documented_wire_format():
    assert STATUS_BYTES == sum(size for _, size in STATUS_WIRE) == 29
    rng = np.random.default_rng(4)
    for flags in [(), ("busy",), ("done", "loaded"), ("error", "pending"), tuple(FLAG_BITS)]:
        fields = {name: int(rng.integers(0, 1 << min(8 * size, 62)))
                  for name, size in STATUS_WIRE if name != "flags"}
        fields["macs"] |= 0xAB << 56                                  # the top byte too
        wire = status_wire(fields, flags)
        value = STATUS.const({**fields, "flags": {name: 1 for name in flags}})
        assert value.as_bits().to_bytes(STATUS_BYTES, "big") == wire
        decoded = decode_status(wire)
        assert decoded == {**fields, **{name: name in flags for name in FLAG_BITS}}
        assert list(decoded) == [name for name, _ in STATUS_WIRE[1:]] + list(FLAG_BITS)


def test_status_payload_wrong():
    with pytest.raises(ValueError, match=r"^A STATUS payload has 29 bytes, not 28$"):
        decode_status(bytes(28))
    device = Device(ScriptedPort([encode_response(Command.STATUS, Status.OK, bytes(28))]),
                    DEFAULT_SPEC)
    with pytest.raises(DeviceError, match=r"^A STATUS payload has 29 bytes, not 28$"):
        device.status()


def test_link_format():
    fmt = LinkFormat(DEFAULT_SPEC)
    assert (fmt.weight_bytes, fmt.input_bytes, fmt.result_bytes) == (4, 1, 5)
    assert fmt.pixel_bytes == 4 and fmt.result_pixel_bytes == 40
    assert fmt.max_payload == Device(ScriptedPort([]), DEFAULT_SPEC).format.max_payload == \
        MAX_PAYLOAD == 1024
    assert fmt.max_read() == 25
    assert fmt.results(bytes([0xFF] * 5 + [0, 0, 0, 0, 7] * 7)) == [[-1] + [7] * 7]


def layer(spec, seed):
    return random_data(np.random.default_rng(seed), spec)


FAULTS = {
    "frame_before_weights": "BAD_STATE", "flipped_bit": "BAD_CRC",
    "flipped_payload_bit": "BAD_CRC", "truncated": "TIMEOUT", "wrong_length": "BAD_LENGTH",
    "too_long": "BAD_LENGTH", "unknown_command": "UNKNOWN_COMMAND", "noise_then_status": "OK",
    "read_bad_length": "BAD_LENGTH",
}


def test_faults_then_a_correct_frame():
    # Each bad packet gets its documented answer, then a load and two frames are exact.
    need_simulator()
    from convaccel.link.sim import run_simulated
    spec = ConvSpec(height=5, width=6, in_channels=2, out_channels=3, kernel=3, padding=1,
                    rows=2, cols=2)
    x, w, b = layer(spec, 1)
    x2 = layer(spec, 2)[0]
    run = run_simulated(spec, [x, x2], w, b, scenario="faults")
    assert run.passed, run.message
    assert run.report["faults"] == FAULTS
    for frame, y in zip([x, x2], run.outputs):
        np.testing.assert_array_equal(y, golden.conv2d(frame, w, b, spec))
    status = run.report["status"]
    assert status["loaded"] and status["done"] and not status["error"]
    assert status["macs"] == spec.macs


EXAMPLES = Path(__file__).parents[2] / "examples"


# (The default layer's exchange runs in tests/test_cli.py, through `convaccel run --simulate`,
# and so does examples/pad_mean.toml, on the same simulator build as here.)
@pytest.mark.parametrize("spec, pad", [
    # a 3x5 kernel at stride 2, asymmetric padding with run-time pad values (per channel, the
    # layer's own -3, 0, 3 unless told): each frame padded with its own mean, loaded with the
    # weights before it
    (ConvSpec.from_toml(EXAMPLES / "pad_mean.toml"), "mean"),
    # (`full`: narrow unsigned inputs cross the link in test_link_fuzz.py by default)
    pytest.param(ConvSpec(height=8, width=10, in_channels=1, out_channels=6, kernel=3,
                          dilation=2, padding="valid", input_signed=False, input_bits=4,
                          weight_bits=6, rows=3, cols=3), None, marks=pytest.mark.full),
], ids=["k3x5_s2_pad_mean", "dilated_unsigned"])
def test_exchange_bit_exact(spec, pad):
    need_simulator()
    from convaccel.link.sim import run_simulated
    x, w, b = layer(spec, 3)
    frames = [x] if pad is None else [x, layer(spec, 4)[0]]
    run = run_simulated(spec, frames, w, b, pad=pad)
    assert run.passed, run.message
    for frame, y in zip(frames, run.outputs):
        np.testing.assert_array_equal(y, golden.conv2d(frame, w, b, spec, pad=pad))
    if pad == "mean":
        # the means differ from frame to frame and from the layer's own pad values, and they
        # mattered
        assert golden.pad_mean(frames[0]) != golden.pad_mean(frames[1]) != spec.pad_values
        assert not np.array_equal(run.outputs[1], golden.conv2d(frames[1], w, b, spec))
    # the board's LEDs followed the exchange (the bench checks them; here, that it did)
    assert run.report["leds"]["pass after the load"] == 1
    link = run.report["link"]
    # the link is the bottleneck: the exchange keeps the line busy most of the time
    assert link["bytes"] * 10 / link["bit_times"] > 0.5


def test_driver_reloads_the_pad_values_before_a_frame():
    # With run-time pad values, run(x, pad) sends the last load again with the frame's pad
    # values (its mean here) at its end, then the frame; without a load first, it refuses.
    spec = ConvSpec(height=3, width=3, in_channels=2, out_channels=1, kernel=3, padding=1,
                    pad_runtime=True, rows=2, cols=1)
    x = np.array([np.full((3, 3), 5), np.arange(9).reshape(3, 3) - 20])
    w, b = np.ones(spec.weight_shape, int), np.array([7])
    with pytest.raises(DeviceError, match=r"^load the weights before run\(x, pad=\.\.\.\): the "
                                          r"pad values travel with them$"):
        Device(ScriptedPort([]), spec).run(x, pad="mean")
    ok = [encode_response(c, Status.OK) for c in (Command.LOAD, Command.LOAD, Command.FRAME)]
    results = encode_response(Command.READ, Status.OK,
                              bytes(spec.output_pixels * LinkFormat(spec).result_pixel_bytes))
    port = ScriptedPort(ok + [results])
    device = Device(port, spec)
    device.load(w, b)
    device.run(x, pad="mean")
    fmt = device.format
    loads = [p[4:-2] for p in port.written[:2]]
    assert loads[0] == fmt.weight_payloads(weight_beats(w, b, spec))[0]
    # the second load: the same weights and bias, then the means 5 and -16
    assert loads[1] == fmt.weight_payloads(weight_beats(w, b, spec, pad=[5, -16]))[0]
    assert loads[1][-2 * fmt.weight_bytes:] == (5).to_bytes(4, "big") + \
        (-16).to_bytes(4, "big", signed=True)
