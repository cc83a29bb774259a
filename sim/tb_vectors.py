"""cocotb testbench that plays input vectors into a design, one set a cycle, and records its
outputs: for components without streams (a multiplier, a netlist of one), checked afterwards
against a model in Python (:func:`play`).

The job folder (``CONVACCEL_TB_JOB``) holds ``vectors.json``: ``inputs``, a list of values
(unsigned integers, one per cycle) per input port, and ``outputs``, the ports to record. The
bench holds ``rst`` (if the design has one) for two cycles, then applies the vectors, cycle
``t``'s before the clock's rising edge ``t``, and writes ``recorded.json``: per output port,
its value in cycle ``t`` (before edge ``t``, as Amaranth's simulator reads a signal in cycle
``t``), unsigned (None while a bit is X or Z).
"""

import json
import os
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge


def _unsigned(value):
    """A port's value as an unsigned integer (a one-bit port's ``Logic`` too), or None while
    any bit is not 0 or 1."""
    try:
        return int(value)
    except ValueError:
        return None


@cocotb.test()
async def play_vectors(dut):
    """Apply every cycle's inputs, record every cycle's outputs."""
    job = Path(os.environ["CONVACCEL_TB_JOB"])
    job_data = json.loads((job / "vectors.json").read_text())
    inputs, outputs = job_data["inputs"], job_data["outputs"]
    cycles = len(next(iter(inputs.values())))
    for name, values in inputs.items():
        getattr(dut, name).value = int(values[0])
    Clock(dut.clk, 10, unit="ns").start()
    if hasattr(dut, "rst"):
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        dut.rst.value = 0
    await FallingEdge(dut.clk)
    recorded = {name: [] for name in outputs}
    for t in range(cycles):
        for name, values in inputs.items():
            getattr(dut, name).value = int(values[t])
        await ReadOnly()
        for name in outputs:
            recorded[name].append(_unsigned(getattr(dut, name).value))
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
    (job / "recorded.json").write_text(json.dumps(recorded))
