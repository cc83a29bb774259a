"""Verilog generation: the engine for a spec, with its ports documented at the head."""

import json
import subprocess
from pathlib import Path

from amaranth import Shape
from amaranth.lib import data, wiring

from . import __version__
from .tools import setup_environment

__all__ = ["generate", "write_design", "generate_network", "write_network_design", "lint",
           "LINT_WAIVERS", "port_table"]

#: Verilator warnings that Amaranth's Verilog (written by Yosys) raises by construction, and
#: why each is harmless. `lint` passes exactly these to `verilator --lint-only`.
LINT_WAIVERS = {
    "WIDTHEXPAND": "Yosys writes operands at their natural width and lets Verilog's context "
                   "rules extend them; Amaranth has already computed every result width.",
    "WIDTHTRUNC": "the same, for assignments that keep the low bits of a wider expression "
                  "(e.g. a counter's `x + 1` into `x`).",
    "ASCRANGE": "a parameter that makes a counter unnecessary (stride 1, one fold) leaves a "
                "zero-width wire, written `[-1:0]`; nothing reads it.",
    "CASEINCOMPLETE": "`case` statements over a state with a default assignment before them "
                      "need no `default:` branch.",
}

_PORT_NOTES = {
    "clk": "clock; every register is on its rising edge",
    "rst": "synchronous reset, active high",
    "pixels": "input frame, one pixel (all input channels) per beat, raster order",
    "results": "output frame, one pixel (all output channels, exact) per beat, raster order",
    "weights": "weights then biases, one per beat, while no frame runs",
    "busy": "a frame is in progress",
    "done": "the last frame completed (cleared when the next starts)",
    "error": "sticky: a frame or a load had the wrong length, or a value did not fit",
    "error_clear": "clears `error`",
    "cycles": "cycles of the current/last frame, start to last result",
    "input_stalls": "cycles of the frame in which the engine waited for a pixel",
    "output_stalls": "cycles of the frame in which a result waited for `results__ready`",
    "macs": "multiply-accumulates of the frame that contributed to a result",
}


def _fields(layout, prefix=""):
    """(name, low bit, width, signed) for every leaf field of a layout."""
    for name, field in layout:
        shape = field.shape
        path = f"{prefix}{name}" if isinstance(name, str) else f"{prefix}[{name}]"
        if isinstance(shape, data.Layout):
            for sub in _fields(shape, path + ("." if isinstance(shape, data.StructLayout)
                                              else "")):
                yield (sub[0], field.offset + sub[1], sub[2], sub[3])
        else:
            yield path, field.offset, field.width, Shape.cast(shape).signed


_NETWORK_PORT_NOTES = {
    **_PORT_NOTES,
    "i": "the input tensor, raster order, the first stage's input beat (channels) per beat",
    "o": "the output tensor, in its order (a classifier's logits: one a beat)",
    "loaded": "every stage's weights are loaded (from the ROMs, after reset); `i` waits for it",
    "error": "sticky: a stage flagged an error (a frame of the wrong length, a bad load value)",
}


def port_table(top, notes=_PORT_NOTES):
    """Rows (name, direction, width, note) for the Verilog ports of `top`, and payload maps."""
    rows = [("clk", "input", 1, notes["clk"]), ("rst", "input", 1, notes["rst"])]
    payloads = []
    for path, member, _ in top.signature.flatten(top):
        name = "__".join(str(p) for p in path)
        direction = "input" if member.flow == wiring.In else "output"
        width = Shape.cast(member.shape).width
        note = ""
        if path[0] in notes and (len(path) == 1 or path[-1] == "payload"):
            note = notes[path[0]]
        if path[-1] == "valid":
            note = "beat offered"
        if path[-1] == "ready":
            note = "beat taken (a transfer is a cycle with valid and ready high)"
        rows.append((name, direction, width, note))
        if path[-1] == "payload":
            payloads.append((name, list(_fields(member.shape))))
    return rows, payloads


def _port_lines(top, notes=_PORT_NOTES):
    """The "Ports:" and "Payload bits" sections of a header."""
    rows, payloads = port_table(top, notes)
    lines = ["Ports:"]
    width = max(len(r[0]) for r in rows)
    for port, direction, bits, note in rows:
        lines.append(f"  {direction:6} {f'[{bits - 1}:0]' if bits > 1 else '':8} "
                     f"{port:{width}}  {note}".rstrip())
    lines += ["", "Payload bits (two's complement fields, lowest bit first):"]
    for port, fields in payloads:
        lines.append(f"  {port}:")
        shown = fields if len(fields) <= 6 else fields[:2] + [None] + fields[-2:]
        for field in shown:
            if field is None:
                lines.append("    ...")
                continue
            fname, lo, bits, signed = field
            lines.append(f"    [{lo + bits - 1}:{lo}] {fname}"
                         f"{' (signed)' if signed else ''}")
    return lines


def _comment(lines):
    return "".join(f"// {line}".rstrip() + "\n" for line in lines) + "\n"


def _header(spec, top, name):
    c_out, out_h, out_w = spec.output_shape
    lines = [
        f"convaccel {__version__}: 2-D convolution engine `{name}`",
        "",
        f"input  {spec.in_channels} x {spec.height} x {spec.width}, "
        f"{'int' if spec.input_signed else 'uint'}{spec.input_bits}; "
        f"kernel {spec.kernel[0]} x {spec.kernel[1]}, stride {spec.stride[0]} x "
        f"{spec.stride[1]}, dilation {spec.dilation[0]} x {spec.dilation[1]}, "
        f"padding (top, bottom, left, right) {spec.pads}, "
        + (f"{spec.padding_mode}" if spec.padding_mode != "constant" else
           f"value {spec.pad_value}" + (" (loaded at run time)" if spec.pad_runtime else ""))
        + (f", {spec.groups} groups" if spec.groups > 1 else ""),
        f"output {c_out} x {out_h} x {out_w}, int{spec.acc_bits} (exact)",
        f"array  {spec.rows} x {spec.cols}, {spec.cycles_per_pixel} cycles per output pixel, "
        f"{spec.cycles} cycles per frame with no stalls",
        "",
        "Streams are valid/ready: a beat transfers in a cycle where both are high; `valid` "
        "never waits for `ready`.",
        "Mark the last pixel of a frame and the last weight-load beat with `last`. Load "
        f"{spec.cycles_per_pixel * spec.pe_count} weights in the order (fold address k, array "
        "row r, column c)",
        f"then {spec.out_channels} biases"
        + (", then the requantization parameters" if spec.requantize else "")
        + (f", then {spec.in_channels} pad values" if spec.pad_runtime else "")
        + "; convaccel.beats.weight_beats() computes it from a "
        f"(C_out, {'C_in' if spec.groups == 1 else 'C_in / groups'}, K_h, K_w) array.",
        "",
        *_port_lines(top),
    ]
    return _comment(lines)


def generate(spec, *, name=None, faulty_pe=None):
    """The Verilog of the engine for ``spec``: one module ``name`` (default: the spec's name,
    else ``convaccel``) and its submodules, with its ports documented in a comment block.
    ``faulty_pe`` breaks one PE, for tests of the verification."""
    from amaranth.back import verilog
    from .hdl.accelerator import ConvAccelerator

    setup_environment()
    name = name or spec.name or "convaccel"
    top = ConvAccelerator(spec, faulty_pe=faulty_pe)
    return _header(spec, top, name) + verilog.convert(top, name=name, emit_src=False)


def write_design(spec, out_dir, *, name=None):
    """Write ``<name>.v`` and ``<name>.json`` (the spec and every derived figure) into
    ``out_dir``. Returns the two paths."""
    name = name or spec.name or "convaccel"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = out_dir / f"{name}.v"
    json_path = out_dir / f"{name}.json"
    verilog_path.write_text(generate(spec, name=name))
    json_path.write_text(json.dumps({
        "name": name,
        "generator": f"convaccel {__version__}",
        "parameters": spec.parameters(),
        "figures": spec.figures(),
    }, indent=2) + "\n")
    return verilog_path, json_path


def lint(verilog_path, top):
    """Run ``verilator --lint-only`` with :data:`LINT_WAIVERS`; returns (ok, messages)."""
    setup_environment()
    verilog_path = Path(verilog_path)
    args = ["verilator", "--lint-only", "--top-module", top]
    args += [f"-Wno-{w}" for w in LINT_WAIVERS]
    args.append(verilog_path.name)
    result = subprocess.run(args, cwd=verilog_path.parent, capture_output=True, text=True)
    return result.returncode == 0, result.stdout + result.stderr


def _dims(shape):
    return " x ".join(map(str, shape))


def _network_header(plan, top, name, board):
    net = plan.network
    lines = [
        f"convaccel {__version__}: the network `{name}` ({Path(net.path).name}, "
        f"{len(net.stages)} stages) as one pipeline",
        "",
        f"input  {_dims(net.input_shape)} int8 (NHWC), {plan.in_lanes} value(s) a beat; "
        f"output {_dims(net.output_shape)} int8, {plan.out_lanes} value(s) a beat",
        f"folding for {'the ' + board.name if board else 'a ' + str(plan.family) + ' budget'}"
        f" (the network compiler's plan):",
        *plan.table(board).splitlines(),
        "",
        "Streams are valid/ready: a beat transfers in a cycle where both are high; `valid` "
        "never waits for `ready`.",
        "The weights are in ROMs: after reset each stage's load streams in; `i` is refused until "
        "`loaded`. Mark a frame's last input beat with `last`.",
        "convaccel.hdl.nettop.input_beats() makes the input beats from the input tensor, "
        "output_tensor() the tensor from the output beats.",
        "",
        *_port_lines(top, _NETWORK_PORT_NOTES),
    ]
    return _comment(lines)


def generate_network(plan, *, name="network", board=None):
    """The Verilog of :class:`~convaccel.hdl.nettop.NetworkTop` for the network compiler's
    `plan`: one module `name` and its submodules (``stage<n>``, ``queue<n>``, ``load<n>``, as
    the top names them), its plan and ports documented in a comment block (the plan's block
    RAM counted for `board`, if given)."""
    from amaranth.back import verilog
    from .hdl.nettop import NetworkTop

    setup_environment()
    top = NetworkTop(plan)
    return (_network_header(plan, top, name, board) +
            verilog.convert(top, name=name, emit_src=False))


def write_network_design(plan, out_dir, *, name="network", board=None):
    """Write ``<name>.v`` (:func:`generate_network`) and ``<name>.json`` (the plan's figures:
    :meth:`~convaccel.compiler.NetworkPlan.figures`) into ``out_dir``. Returns the two
    paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    verilog_path = out_dir / f"{name}.v"
    json_path = out_dir / f"{name}.json"
    verilog_path.write_text(generate_network(plan, name=name, board=board))
    json_path.write_text(json.dumps({
        "name": name,
        "generator": f"convaccel {__version__}",
        "model": str(plan.network.path),
        "input_shape": list(plan.network.input_shape),
        "output_shape": list(plan.network.output_shape),
        "plan": plan.figures(board),
    }, indent=2) + "\n")
    return verilog_path, json_path
