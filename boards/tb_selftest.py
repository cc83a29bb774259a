"""cocotb testbench of :class:`convaccel.boards.selftest.SelfTest` (its generated Verilog).

Parameters come from the environment:

``SELFTEST_EXPECT``
    ``pass``: ``passed`` must rise and stay up for ``SELFTEST_FRAMES`` frames with ``failed``
    low; ``fail``: ``failed`` must rise (and ``passed`` never) within those frames.
``SELFTEST_FRAMES``
    Frames to watch (default 2).
``SELFTEST_FRAME_CYCLES``
    The spec's cycles per frame, to bound the wait.
"""

import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge


@cocotb.test()
async def selftest_outcome(dut):
    expect = os.environ.get("SELFTEST_EXPECT", "pass")
    assert expect in ("pass", "fail"), f"SELFTEST_EXPECT must be pass or fail, not {expect!r}"
    frames = int(os.environ.get("SELFTEST_FRAMES", "2"))
    frame_cycles = int(os.environ["SELFTEST_FRAME_CYCLES"])
    # Loading the weights and filling the pipeline take far less than a frame; allow two more.
    budget = (frames + 2) * (frame_cycles + 1024)

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0

    passed_seen = False
    for cycle in range(budget):
        await RisingEdge(dut.clk)
        await ReadOnly()
        failed = int(dut.failed.value)          # one bit: a Logic
        passed = int(dut.passed.value)
        done_frames = dut.frames.value.to_unsigned()
        if passed and failed:
            raise AssertionError(f"passed and failed both high in cycle {cycle}")
        passed_seen |= bool(passed)
        if expect == "pass":
            assert not failed, f"the self-test failed in cycle {cycle} after {done_frames} frames"
            if done_frames >= frames:
                assert passed, f"{done_frames} frames done but passed is low"
                dut._log.info(f"passed: {done_frames} frames in {cycle} cycles")
                return
        else:
            assert not passed_seen, f"passed rose in cycle {cycle} although the ROM is corrupt"
            if failed:
                dut._log.info(f"failed as it should, in cycle {cycle}")
                return
    raise AssertionError(f"no outcome after {budget} cycles ({expect} expected); frames done: "
                         f"{dut.frames.value.to_unsigned()}")
