"""PLL parameters, computed in Python like the vendors' calculators, and the PLL primitives.

One function per family finds the divider settings whose output is closest to the requested
frequency within the device's documented ranges (the same search, in the same order, as
``icepll``, ``ecppll`` and Apicula's ``gowin_pll``, so the results can be compared with them),
and one function instantiates the primitive.
"""

from dataclasses import dataclass

from amaranth import C, Instance

__all__ = ["PLLParams", "ecp5_pll", "gowin_pll", "ice40_pll", "pll_instance", "pll_params"]


@dataclass(frozen=True)
class PLLParams:
    """The settings of one PLL: the family, input and achieved output frequency (MHz), the
    VCO frequency and the primitive's divider parameters by name."""

    family: str
    f_in: float
    f_out: float
    f_vco: float
    dividers: dict


def _no_solution(family, f_in, f_out, lo, hi):
    return ValueError(
        f"The {family} PLL cannot make {f_out:g} MHz from {f_in:g} MHz; request a frequency "
        f"between {lo:g} and {hi:g} MHz")


def ice40_pll(f_in, f_out):
    """``SB_PLL40_*`` in SIMPLE feedback mode (iCE40 LP/HX/UltraPlus), like ``icepll``.

    PFD 10..133 MHz, VCO 533..1066 MHz, output 16..275 MHz.
    """
    if not 16 <= f_out <= 275:
        raise _no_solution("iCE40", f_in, f_out, 16, 275)
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f = f_vco / (1 << divq)
                if best is None or abs(f - f_out) < abs(best[0] - f_out):
                    best = (f, f_vco, divr, divf, divq, f_pfd)
    if best is None:
        raise _no_solution("iCE40", f_in, f_out, 16, 275)
    f, f_vco, divr, divf, divq, f_pfd = best
    filter_range = next((n for n, limit in enumerate((17, 26, 44, 66, 101), 1) if f_pfd < limit),
                        6)
    return PLLParams("ice40", f_in, f, f_vco, {
        "DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range})


def ecp5_pll(f_in, f_out):
    """``EHXPLLL`` with CLKOP feedback (ECP5), like ``ecppll``.

    PFD 3.125..400 MHz, VCO 400..800 MHz, output 3.125..400 MHz.
    """
    if not 3.125 <= f_out <= 400:
        raise _no_solution("ECP5", f_in, f_out, 3.125, 400)
    best = best_key = None
    for clki_div in range(1, 129):
        f_pfd = f_in / clki_div
        if not 3.125 <= f_pfd <= 400:
            continue
        for clkfb_div in range(1, 81):
            for clkop_div in range(1, 129):
                f_vco = f_pfd * clkfb_div * clkop_div
                if not 400 <= f_vco <= 800:
                    continue
                f = f_vco / clkop_div
                # Equal errors: prefer the VCO nearest the middle of its range, as ecppll does.
                key = (round(abs(f - f_out), 9), abs(f_vco - 600))
                if best is None or key < best_key:
                    best, best_key = (f, f_vco, clki_div, clkfb_div, clkop_div), key
    if best is None:
        raise _no_solution("ECP5", f_in, f_out, 3.125, 400)
    f, f_vco, clki_div, clkfb_div, clkop_div = best
    return PLLParams("ecp5", f_in, f, f_vco, {
        "CLKI_DIV": clki_div, "CLKFB_DIV": clkfb_div, "CLKOP_DIV": clkop_div,
        # Zero phase: the coarse phase counter runs a full output period (as LiteX does).
        "CLKOP_CPHASE": clkop_div - 1, "CLKOP_FPHASE": 0})


_GOWIN_ODIV = (2, 4, 8, 16, 32, 48, 64, 80, 96, 112, 128)


def gowin_pll(f_in, f_out):
    """``rPLL`` (Gowin GW1N(R)-9, speed C6/I5), like Apicula's ``gowin_pll``.

    PFD 3..400 MHz, VCO 400..1200 MHz, output 3.125..600 MHz.
    """
    if not 3.125 < f_out < 600:
        raise _no_solution("Gowin", f_in, f_out, 3.125, 600)
    best = None
    for idiv in range(64):
        f_pfd = f_in / (idiv + 1)
        if not 3 <= f_pfd <= 400:
            continue
        for fbdiv in range(64):
            f = f_in * (fbdiv + 1) / (idiv + 1)
            if not 3.125 < f < 600:
                continue
            for odiv in _GOWIN_ODIV:
                f_vco = f * odiv
                if not 400 < f_vco < 1200:
                    continue
                if (abs(f - f_out) < (abs(best[0] - f_out) if best else f_in)):
                    best = (f, f_vco, idiv, fbdiv, odiv)
    if best is None:
        raise _no_solution("Gowin", f_in, f_out, 3.125, 600)
    f, f_vco, idiv, fbdiv, odiv = best
    return PLLParams("gowin", f_in, f, f_vco, {
        "IDIV_SEL": idiv, "FBDIV_SEL": fbdiv, "ODIV_SEL": odiv})


_CALCULATORS = {"ice40": ice40_pll, "ecp5": ecp5_pll, "gowin": gowin_pll}


def pll_params(family, f_in, f_out):
    """The PLL settings for `family` ("ice40", "ecp5" or "gowin")."""
    if family not in _CALCULATORS:
        raise ValueError(f"PLL family must be one of {', '.join(_CALCULATORS)}, not {family!r}")
    return _CALCULATORS[family](f_in, f_out)


def pll_instance(params, clk_in, clk_out, locked, *, pad=False):
    """The PLL primitive for `params`: `clk_in` in, `clk_out` and `locked` out.

    On iCE40, ``pad=True`` uses ``SB_PLL40_PAD`` (the input is the package pin itself, an
    ``IOPort``; the UP5K's oscillator pin 35 is such a pad), else ``SB_PLL40_CORE``.
    """
    d = params.dividers
    if params.family == "ice40":
        return Instance(
            "SB_PLL40_PAD" if pad else "SB_PLL40_CORE",
            p_FEEDBACK_PATH="SIMPLE",
            p_DIVR=d["DIVR"], p_DIVF=d["DIVF"], p_DIVQ=d["DIVQ"],
            p_FILTER_RANGE=d["FILTER_RANGE"],
            **{"i_PACKAGEPIN" if pad else "i_REFERENCECLK": clk_in},
            i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=clk_out, o_LOCK=locked)
    if params.family == "ecp5":
        return Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{params.f_in:g}",
            a_FREQUENCY_PIN_CLKOP=f"{params.f_out:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=d["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=d["CLKOP_DIV"],
            p_CLKOP_CPHASE=d["CLKOP_CPHASE"], p_CLKOP_FPHASE=d["CLKOP_FPHASE"],
            p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=d["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk_in, o_CLKOP=clk_out, i_CLKFB=clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
    if params.family == "gowin":
        return Instance(
            "rPLL",
            p_FCLKIN=f"{params.f_in:g}",
            p_IDIV_SEL=d["IDIV_SEL"], p_FBDIV_SEL=d["FBDIV_SEL"], p_ODIV_SEL=d["ODIV_SEL"],
            i_CLKIN=clk_in, i_CLKFB=0, i_RESET=0, i_RESET_P=0,
            i_FBDSEL=C(0, 6), i_IDSEL=C(0, 6), i_ODSEL=C(0, 6),
            i_PSDA=C(0, 4), i_DUTYDA=C(0, 4), i_FDLY=C(0, 4),
            o_CLKOUT=clk_out, o_LOCK=locked)
    raise AssertionError(params.family)
