"""The host link rehearsed without a board: the board top's serial engine, LEDs and pins under
cocotb."""

import dataclasses
import json
import tempfile
from pathlib import Path

import numpy as np

from .. import __version__, golden
from ..tools import setup_environment

__all__ = ["SIM_DIVISOR", "LinkRun", "run_simulated", "run_simulated_network"]

#: Clock cycles per UART bit in simulation. The protocol and the gateware are the same at any
#: divisor; a small one keeps the simulation short (a byte is 10 bit times either way).
SIM_DIVISOR = 8


@dataclasses.dataclass
class LinkRun:
    outputs: np.ndarray | None
    report: dict
    passed: bool
    message: str
    log: Path

    def throughput(self, baud):
        """Bytes per second that the exchange would move at ``baud``: the bytes it moved over
        the bit times it took, on the simulated line."""
        link = self.report.get("link")
        if not link or not link["bit_times"]:
            return 0.0
        return link["bytes"] / link["bit_times"] * baud


def serial_verilog(spec, divisor=SIM_DIVISOR, name="serial_top", engine=None):
    """The board top of the link, less its PLL, power-on reset and pin buffers (its
    :class:`~convaccel.boards.top.BoardCore`): serial pins ``rx``/``tx``, LEDs ``led_*``
    (`engine`: :class:`~convaccel.link.gateware.HostLink`'s)."""
    from amaranth.back import verilog

    from ..boards.top import BoardCore
    from .gateware import SerialAccelerator

    setup_environment()
    core = BoardCore(SerialAccelerator(spec, divisor=divisor, engine=engine))
    return verilog.convert(core, name=name, emit_src=False)


def run_simulated(spec, frames, w, b, *, requant=None, pad=None, scenario="run",
                  simulator=None, seed=None):
    """Load ``w``, ``b`` and run ``frames`` through the serial engine, the real host driver
    talking to its simulated UART pins. ``scenario="faults"`` first sends every kind of bad
    packet and records the device's answers. A requantized layer needs `requant` (a
    :class:`~convaccel.quant.Requant`). ``pad``, for a layer with run-time pad values, pads
    every frame (values, or ``"mean"``: each frame's own), as
    :meth:`~convaccel.link.device.Device.run` does."""
    from ..sim.runner import build_key, cache_dir, default_simulator, write_source

    for x in frames:
        golden.conv2d(x, w, b, spec, requant, pad)    # validates the arrays
    text = serial_verilog(spec)
    simulator = simulator or default_simulator()
    build_dir = cache_dir() / "board" / f"serial-{simulator}-{build_key(text, __version__)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = write_source(build_dir, "serial_top.v", text)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=build_dir))
    (job_dir / "job.json").write_text(json.dumps({
        "spec": spec.parameters(), "divisor": SIM_DIVISOR, "scenario": scenario,
        "pad": pad if isinstance(pad, (str, type(None))) else np.asarray(pad).tolist()}))
    arrays = {"x": np.stack(frames), "w": np.asarray(w)}
    if b is not None:
        arrays["b"] = np.asarray(b)
    if requant is not None:
        arrays["r"] = np.array(requant.values(), dtype=np.int64)
    np.savez(job_dir / "data.npz", **arrays)
    return _run_board_job(verilog_path, build_dir, job_dir, simulator, seed)


def run_simulated_network(plan, model, board, frames, *, simulator=None, seed=None):
    """Run the input tensors `frames` through a network's board top (its
    :class:`~convaccel.link.network.NetworkEngine` behind the link), the real host driver
    (:class:`~convaccel.link.device.NetworkDevice`) talking to its simulated UART pins; the
    bench recompiles `model` for `board` (the same plan) and checks each output tensor against
    the golden model."""
    from ..sim.runner import build_key, cache_dir, default_simulator, write_source
    from .network import NetworkEngine, NetworkLinkSpec

    text = serial_verilog(NetworkLinkSpec(plan), engine=NetworkEngine(plan))
    simulator = simulator or default_simulator()
    build_dir = cache_dir() / "board" / f"serial-{simulator}-{build_key(text, __version__)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = write_source(build_dir, "serial_top.v", text)
    job_dir = Path(tempfile.mkdtemp(prefix="job-", dir=build_dir))
    (job_dir / "job.json").write_text(json.dumps({
        "network": str(Path(model).resolve()), "board": board.name, "divisor": SIM_DIVISOR,
        "scenario": "run"}))
    np.savez(job_dir / "data.npz", x=np.stack(frames))
    return _run_board_job(verilog_path, build_dir, job_dir, simulator, seed)


def _run_board_job(verilog_path, build_dir, job_dir, simulator, seed):
    """The board bench (:mod:`convaccel.link.tb_board`) on the job in `job_dir`; its outputs,
    report and verdict as a :class:`LinkRun`."""
    from ..sim.runner import run_cocotb
    from ..simulate import _failure_message

    run = run_cocotb(verilog_path, "serial_top", "convaccel.link.tb_board", build_dir=build_dir,
                     simulator=simulator, seed=seed, test_dir=job_dir,
                     extra_env={"CONVACCEL_TB_JOB": str(job_dir)})
    report = {}
    if (job_dir / "report.json").exists():
        report = json.loads((job_dir / "report.json").read_text())
    outputs = np.load(job_dir / "out.npz")["y"] if (job_dir / "out.npz").exists() else None
    return LinkRun(outputs, report, run.passed,
                   "" if run.passed else _failure_message(run.results_xml), job_dir / "sim.log")
