"""The ``build`` and ``boards`` subcommands of ``convaccel``.

:func:`register` adds them to the main command line's subparsers; :func:`main` runs them on
their own (``python -m convaccel.boards.cli``).
"""

import sys
from pathlib import Path

from . import DEFAULT_BOARD, boards, get_board
from .fit import FitError

__all__ = ["format_boards", "main", "register"]


def format_boards():
    """The registered boards as a table."""
    header = (f"{'board':<15} {'device':<21} {'family':<6} {'LUT':>6} {'FF':>6} {'DSP':>4} "
              f"{'BRAM':>5} {'clock':>9}  programmer")
    lines = [header]
    for board in boards():
        r = board.resources
        programmer = " ".join(("openFPGALoader", *board.programmer)) if board.programmer \
            else "toolchain_program"
        lines.append(
            f"{board.name:<15} {board.device:<21} {board.family:<6} "
            f"{r.get('lut', r.get('logic', 0)):>6} {r.get('ff', 0):>6} {r.get('dsp', 0):>4} "
            f"{r.get('bram', 0):>5} {board.default_mhz:>5g} MHz  {programmer}")
    lines.append(f"(clock: the engine's default, made by a PLL from the board's oscillator; "
                 f"BRAM: blocks of 4 Kbit on iCE40, 18 Kbit on ECP5 and Gowin; "
                 f"default board: {DEFAULT_BOARD})")
    return "\n".join(lines)


def cmd_boards(args):
    print(format_boards())
    return 0


def cmd_build(args):
    # convaccel.cli imports this module to register the commands: import it late.
    from ..cli import UsageError, _load_spec, design_name
    from .flow import BuildError, ProgramError, build, program, program_command
    from .report import format_summary

    if args.dry_run and not args.program:
        raise UsageError("--dry-run only applies to --program; add --program")
    try:
        board = get_board(args.board)
    except ValueError as e:
        raise UsageError(str(e)) from None
    spec = _load_spec(args.config)
    name = design_name(spec, args.config)
    output = Path(args.output or Path("build") / board.name)
    try:
        summary = build(spec, board, output=output, name=name, freq_mhz=args.freq,
                        seed=args.seed, app="link" if args.link else "selftest",
                        baud=args.baud)
    except (FitError, BuildError, TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(format_summary(summary))
    print(f"summary: {output / (name + '.summary.json')}")
    status = 0
    if not summary["timing_met"]:
        print(f"convaccel: timing missed: {summary['fmax_mhz']:.2f} MHz achieved, "
              f"{summary['target_mhz']:.2f} MHz required; lower --freq"
              + ("" if args.allow_timing_fail else " or pass --allow-timing-fail"),
              file=sys.stderr)
        status = 0 if args.allow_timing_fail else 1
    if args.program:
        try:
            if args.dry_run:
                print(" ".join(program_command(board, summary["bitstream"])))
            else:
                program(board, summary["bitstream"])
                print(f"programmed the {board.title}")
        except ProgramError as e:
            raise UsageError(str(e)) from None
    return status


def register(subparsers):
    """Add ``build`` and ``boards`` to `subparsers` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "build", help="build a bitstream for a board (and program it)",
        description="Check that the layer fits the board, then build the board top (the engine "
                    "behind its serial host link, or running its built-in self-test) with the "
                    "open tools, and print and write "
                    "DIR/<name>.summary.json: achieved vs required clock and resources used. "
                    "Exits 1 if the clock is missed (unless --allow-timing-fail).")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?", help="layer configuration")
    p.add_argument("--board", default=DEFAULT_BOARD, metavar="NAME",
                   help=f"target board (default: {DEFAULT_BOARD}; `convaccel boards` lists "
                        f"them)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="build folder (default: build/<board>)")
    p.add_argument("--freq", type=float, metavar="MHZ",
                   help="engine clock in MHz (default: the board's)")
    p.add_argument("--seed", type=int, metavar="N", help="nextpnr placement seed")
    p.add_argument("--baud", type=int, default=115200,
                   help="the host link's baud rate (default: 115200)")
    p.add_argument("--link", action="store_true",
                   help="put the engine behind the serial host link (`convaccel run` talks to "
                        "it) instead of the built-in self-test")
    p.add_argument("--allow-timing-fail", action="store_true",
                   help="exit 0 even if the clock is missed")
    p.add_argument("--program", action="store_true",
                   help="program the board with openFPGALoader after building")
    p.add_argument("--dry-run", action="store_true",
                   help="with --program: print the programming command instead of running it")
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser(
        "boards", help="list the supported boards",
        description="List the boards `convaccel build` supports: device, resources, default "
                    "clock and programmer.")
    p.set_defaults(func=cmd_boards)


def main(argv=None):
    """The ``convaccel`` command line (these commands are part of it)."""
    from ..cli import main as convaccel_main
    return convaccel_main(argv)


if __name__ == "__main__":
    sys.exit(main())
