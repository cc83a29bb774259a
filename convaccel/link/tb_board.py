"""cocotb testbench: the host driver talks to the engine through simulated UART pins.

The job folder (``CONVACCEL_TB_JOB``) holds ``job.json`` (the spec's parameters, the UART
divisor, the scenario, the frames' run-time pad values if any) and ``data.npz`` (frames
``x``, weights ``w``, bias ``b``). The very
:class:`convaccel.link.device.Device` that drives a real board runs in a thread (cocotb's
``bridge``), its bytes crossing the ``rx``/``tx`` pins bit by bit, and the board's LEDs are
checked between its steps. The bench writes
``out.npz`` (what the device answered) and ``report.json`` (statuses, counters, link figures).
"""

import collections
import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.queue import Queue
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, Event, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from convaccel import ConvSpec, golden
from convaccel.boards.top import LED_ROLES
from convaccel.link.device import Device
from convaccel.link.protocol import Command, encode_request
from convaccel.quant import requant_from_values


#: The simulated clock period.
PERIOD_NS = 10


class SerialPins:
    """The host's end of the serial line: bytes in and out of ``rx``/``tx``, 8N1.

    Bit times are waited for with timers, one per bit, from a falling clock edge (mid-cycle,
    away from the rising edges on which the design samples and drives its pins): waiting
    cycle by cycle would run Python on every clock edge.
    """

    def __init__(self, dut, divisor, read_timeout):
        self.dut = dut
        self.divisor = divisor
        self.read_timeout = read_timeout
        self.outgoing = Queue()
        self.incoming = collections.deque()
        self.arrived = Event()
        self.bits = 0

    def _bits(self, n):
        return Timer(n * self.divisor * PERIOD_NS, "ns")

    async def send_loop(self):
        dut = self.dut
        while True:
            byte = await self.outgoing.get()
            await FallingEdge(dut.clk)
            for bit in [0] + [(byte >> n) & 1 for n in range(8)] + [1]:
                dut.rx.value = bit
                await self._bits(1)

    async def receive_loop(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.tx)
            await FallingEdge(dut.clk)
            await Timer(self.divisor // 2 * PERIOD_NS, "ns")    # the start bit's middle
            if dut.tx.value != 0:
                continue                                    # a glitch
            byte = 0
            for n in range(8):
                await self._bits(1)
                byte |= int(dut.tx.value) << n
            await self._bits(1)
            if dut.tx.value == 1:                            # the stop bit
                self.incoming.append(byte)
                self.arrived.set()

    async def write(self, data):
        for byte in data:
            await self.outgoing.put(byte)

    async def read(self, n):
        while len(self.incoming) < n:
            self.arrived.clear()
            timer = Timer(self.read_timeout * PERIOD_NS, "ns")
            if await First(self.arrived.wait(), timer) is timer:
                break
        count = min(n, len(self.incoming))
        return bytes(self.incoming.popleft() for _ in range(count))


class SimTransport:
    """pyserial's ``write``/``read`` for the driver's thread, carried out in the simulation."""

    def __init__(self, pins):
        self._write = resume(pins.write)
        self._read = resume(pins.read)

    def write(self, data):
        self._write(bytes(data))
        return len(data)

    def read(self, n):
        return self._read(n)


def fault_checks(device, spec, x):
    """Each fault gets its documented status, and the device stays usable. Returns
    {fault: status name}."""
    fmt = device.format
    seen = {}

    def raw(name, data):
        device.send_raw(data)
        seen[name] = device.read_response()[1].name

    one_pixel = fmt.frame_payloads(fmt.pixels(x)[:1])[0]
    raw("frame_before_weights", encode_request(Command.FRAME, one_pixel))
    packet = bytearray(encode_request(Command.STATUS))
    packet[-1] ^= 0x10                                       # a flipped bit in the CRC
    raw("flipped_bit", packet)
    packet = bytearray(encode_request(Command.FRAME, one_pixel))
    packet[5] ^= 0x01                                        # a flipped bit in the payload
    raw("flipped_payload_bit", packet)
    raw("truncated", encode_request(Command.LOAD, bytes(fmt.weight_bytes * 4))[:7])
    raw("wrong_length", encode_request(Command.LOAD, bytes(fmt.weight_bytes + 1)))
    raw("too_long", bytes([0xA5, Command.LOAD]) + (fmt.max_payload + 1).to_bytes(2, "big"))
    raw("unknown_command", encode_request(0x7E))
    noise = bytes(random.Random(1).choice([b for b in range(256) if b != 0xA5])
                  for _ in range(40))
    raw("noise_then_status", noise + encode_request(Command.STATUS))
    raw("read_bad_length", encode_request(Command.READ, b"\x01"))
    return seen


async def start(dut, divisor):
    """Clock, reset, and the host's serial pins."""
    dut.rx.value = 1
    dut.rst.value = 1
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    pins = SerialPins(dut, divisor, read_timeout=2000 * 10 * divisor)
    cocotb.start_soon(pins.send_loop())
    cocotb.start_soon(pins.receive_loop())
    return pins


def cycle():
    """The clock cycle the simulation is in."""
    return get_sim_time("ns") // PERIOD_NS


def led_reader(dut):
    """A blocking function for the host's thread: the board's LEDs at the next clock edge."""
    @resume
    async def read_leds():
        await RisingEdge(dut.clk)
        return {role: int(getattr(dut, f"led_{role}").value) for role in LED_ROLES}
    return read_leds


async def network_session(dut, job, job_dir, arrays):
    """A network's board top: the input tensors sent, the output tensors read, each equal to
    the golden model's; its LEDs: the ROMs loaded, no error, done, idle."""
    from convaccel.boards import get_board
    from convaccel.compiler import compile_network
    from convaccel.link.device import NetworkDevice
    from convaccel.network import load_network

    network = load_network(job["network"])
    plan = compile_network(network, get_board(job["board"]))
    divisor = int(job["divisor"])
    pins = await start(dut, divisor)
    read_leds = led_reader(dut)

    def session():
        device = NetworkDevice(SimTransport(pins), plan, retries=3)
        report = {}
        device.reset()
        start_bytes, start_cycle = device.bytes_sent + device.bytes_received, cycle()
        outputs = [device.run(x) for x in arrays["x"]]
        report["status"] = device.status()
        report["leds"] = {f"{role} after the frames": value for role, value in
                          read_leds().items() if role in ("pass", "fail", "done", "busy")}
        moved = device.bytes_sent + device.bytes_received - start_bytes
        report["link"] = {"bytes": moved, "bit_times": (cycle() - start_cycle) / divisor,
                          "resent": device.resent}
        return report, outputs

    report, outputs = await bridge(session)()
    np.savez(job_dir / "out.npz", y=np.array(outputs))
    (job_dir / "report.json").write_text(json.dumps(report, indent=1))
    assert report["leds"] == {"pass after the frames": 1, "fail after the frames": 0,
                              "done after the frames": 1, "busy after the frames": 0}, \
        report["leds"]
    for n, (x, y) in enumerate(zip(arrays["x"], outputs)):
        expected = network.golden(x)
        assert np.array_equal(y, expected), f"frame {n}: the device's output tensor differs " \
            f"from the golden model at {np.argwhere(y != expected)[0].tolist()}"


@cocotb.test()
async def host_session(dut):
    job_dir = Path(os.environ["CONVACCEL_TB_JOB"])
    job = json.loads((job_dir / "job.json").read_text())
    arrays = np.load(job_dir / "data.npz")
    if "network" in job:
        await network_session(dut, job, job_dir, arrays)
        return
    spec = ConvSpec(**job["spec"])
    divisor = int(job["divisor"])
    frames = list(arrays["x"])
    w, b = arrays["w"], arrays.get("b")
    requant = requant_from_values(arrays["r"]) if "r" in arrays else None
    pad = job.get("pad")

    pins = await start(dut, divisor)
    read_leds = led_reader(dut)

    def session():
        device = Device(SimTransport(pins), spec, retries=3)
        report = {}
        if job["scenario"] == "faults":
            report["faults"] = fault_checks(device, spec, frames[0])
        device.reset()
        start_bytes, start_cycle = device.bytes_sent + device.bytes_received, cycle()
        # (the first frame's pad values with the weights: run() sends them again only when
        # they change)
        device.load(w, b, requant, None if pad is None else golden.resolve_pad(spec, pad,
                                                                               frames[0]))
        leds = {"pass after the load": read_leds()["pass"]}
        outputs = [device.run(x, pad) for x in frames]
        report["status"] = device.status()
        leds.update({f"{role} after the frames": value for role, value in read_leds().items()
                     if role in ("pass", "fail", "done", "busy")})
        report["leds"] = leds
        moved = device.bytes_sent + device.bytes_received - start_bytes
        report["link"] = {"bytes": moved, "bit_times": (cycle() - start_cycle) / divisor,
                          "resent": device.resent}
        return report, outputs

    report, outputs = await bridge(session)()
    np.savez(job_dir / "out.npz", y=np.array(outputs))
    (job_dir / "report.json").write_text(json.dumps(report, indent=1))
    # The board's LEDs: weights loaded, the last frame done, no error, idle.
    assert report["leds"] == {"pass after the load": 1, "pass after the frames": 1,
                              "fail after the frames": 0, "done after the frames": 1,
                              "busy after the frames": 0}, report["leds"]
    for n, (x, y) in enumerate(zip(frames, outputs)):
        expected = golden.conv2d(x, w, b, spec, requant, pad)
        assert np.array_equal(y, expected), f"frame {n}: the device's answer differs from the " \
            f"golden model at {np.argwhere(y != expected)[0].tolist()}"
