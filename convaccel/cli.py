"""The ``convaccel`` command line."""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, golden
from .spec import DEFAULT_SPEC, ConfigError, ConvSpec

__all__ = ["main"]


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit status 2."""


def _load_spec(config):
    if config is None:
        return DEFAULT_SPEC
    return ConvSpec.from_toml(config)


def design_name(spec, config):
    """The config's `name`, else its file name made into a Verilog identifier."""
    if spec.name:
        return spec.name
    if config is None:
        return "convaccel"
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(config).stem)
    return stem if re.match(r"[A-Za-z_]", stem) else f"conv_{stem}"


def _format_bits(bits):
    if bits >= 8 * 1024:
        return f"{bits} bits ({bits / 8 / 1024:.1f} KiB)"
    return f"{bits} bits"


def format_spec(spec):
    """A human-readable report of a layer and its derived figures."""
    c_in, h, w = spec.input_shape
    c_out, out_h, out_w = spec.output_shape
    top, bottom, left, right = spec.pads
    kind = "int" if spec.input_signed else "uint"
    lines = [
        f"layer {spec.name or '(unnamed)'}",
        f"  input         {c_in} x {h} x {w} ({kind}{spec.input_bits})",
        f"  kernel        {spec.kernel[0]} x {spec.kernel[1]}, stride {spec.stride[0]} x "
        f"{spec.stride[1]}, dilation {spec.dilation[0]} x {spec.dilation[1]}",
        f"  padding       top {top}, bottom {bottom}, left {left}, right {right} "
        f"(value {spec.pad_value}); padded frame {spec.padded_shape[0]} x "
        f"{spec.padded_shape[1]}",
        f"  weights       {' x '.join(map(str, spec.weight_shape))} (int{spec.weight_bits}), "
        f"bias int{spec.bias_bits}",
        f"  output        {c_out} x {out_h} x {out_w} (int{spec.acc_bits}, exact)",
        f"array {spec.rows} x {spec.cols} = {spec.pe_count} MAC/cycle",
        f"  folds         {spec.row_folds} (reduction {spec.reduction} over {spec.rows} rows) x "
        f"{spec.col_folds} ({c_out} filters over {spec.cols} columns) = "
        f"{spec.cycles_per_pixel} cycles per output pixel",
        f"  MACs          {spec.macs} per frame",
        f"  cycles        {spec.cycles} per frame with no stalls (utilization "
        f"{spec.utilization:.1%})",
        f"memory",
        f"  line buffer   {_format_bits(spec.line_buffer_bits)}",
        f"  weights       {_format_bits(spec.weight_memory_bits)}",
        f"  bias          {_format_bits(spec.bias_memory_bits)}",
    ]
    return "\n".join(lines)


def cmd_spec(args):
    spec = _load_spec(args.config)
    if args.json:
        print(json.dumps({"parameters": spec.parameters(), "figures": spec.figures()},
                         indent=2))
    else:
        print(format_spec(spec))
    return 0


def cmd_generate(args):
    from .generate import lint, write_design

    spec = _load_spec(args.config)
    name = design_name(spec, args.config)
    start = time.perf_counter()
    verilog_path, json_path = write_design(spec, args.output, name=name)
    elapsed = time.perf_counter() - start
    lines = verilog_path.read_text().count("\n")
    print(f"wrote {verilog_path} ({lines} lines, top module `{name}`) and {json_path} "
          f"in {elapsed:.1f} s")
    if args.lint:
        ok, messages = lint(verilog_path, name)
        print(f"verilator --lint-only: {'clean' if ok else 'FAILED'}")
        if not ok:
            print(messages, file=sys.stderr)
            return 1
    return 0


def cmd_demo(args):
    spec = DEFAULT_SPEC
    print("== convaccel demo: the default layer ==")
    print(format_spec(spec))
    print()
    rng = np.random.default_rng(args.seed)
    x = rng.integers(*spec.input_range, endpoint=True, size=spec.input_shape)
    w = rng.integers(*spec.weight_range, endpoint=True, size=spec.weight_shape)
    b = rng.integers(-(1 << 16), 1 << 16, size=spec.bias_shape)
    start = time.perf_counter()
    y = golden.conv2d(x, w, b, spec)
    elapsed = time.perf_counter() - start
    print(f"== golden model: random frame (seed {args.seed}) ==")
    print(f"output {y.shape}, {y.dtype}, range {y.min()}..{y.max()}, "
          f"computed in {elapsed * 1e3:.1f} ms")
    print(f"output[0, 0, :8] = {y[0, 0, :8].tolist()}")
    print()

    print("== generate: Verilog of the engine ==")
    status = cmd_generate(argparse.Namespace(config=None, output=args.output, lint=True))
    return status


def build_parser():
    parser = argparse.ArgumentParser(
        prog="convaccel",
        description="Generate, verify and build bit-exact FPGA convolution accelerators.")
    parser.add_argument("--version", action="version", version=f"convaccel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("spec", help="print a layer's derived figures",
                       description="Print the shapes, widths, memory and predicted cycles of a "
                                   "layer (the default layer when no CONFIG is given).")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?", help="layer configuration")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_spec)

    p = sub.add_parser("demo", help="run the main job on the default layer",
                       description="Run everything convaccel does on the default layer.")
    p.add_argument("--seed", type=int, default=1, help="random seed of the test frame")
    p.add_argument("-o", "--output", default="build/demo", metavar="DIR",
                   help="where to write what the demo makes (default: build/demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("generate", help="write the engine's Verilog",
                       description="Write DIR/<name>.v (the engine, its ports documented at the "
                                   "head) and DIR/<name>.json (the spec and every derived "
                                   "figure). <name> is the config's `name`, else its file "
                                   "name; with no CONFIG, the default layer.")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?", help="layer configuration")
    p.add_argument("-o", "--output", default="build", metavar="DIR",
                   help="output folder (default: build)")
    p.add_argument("--lint", action="store_true",
                   help="also run verilator --lint-only on the result")
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, UsageError) as e:
        print(f"convaccel: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
