# amaranth: UnusedElaboratable=no
"""ConvSpec: normalization, derived figures, the output-size rule and every error message."""

import json
import re

import pytest
from hypothesis import given, strategies as st

from convaccel import DEFAULT_SPEC, ConfigError, ConvSpec, Folding

BASE = dict(height=8, width=8, in_channels=3, out_channels=4, kernel=3)


def spec(**kw):
    return ConvSpec(**{**BASE, **kw})


# -- the output-size formula ------------------------------------------------------------------

@pytest.mark.parametrize("size, k, p, s, out", [
    (7, 3, 0, 2, 3), (5, 3, 1, 2, 3), (32, 5, 0, 1, 28), (223, 7, 3, 2, 112), (1, 1, 0, 1, 1),
    (9, 3, 0, 3, 3),
])
def test_output_size(size, k, p, s, out):
    assert spec(width=size, height=size, kernel=k, padding=p, stride=s).output_size == (out, out)


def test_output_width_not_integer_wrong():
    with pytest.raises(ValueError, match=re.escape(
            "Output width is not an integer: (width - kernel + padding) / stride + 1 = "
            "(10 - 3 + 0 + 0) / 2 + 1 = 4.5; use width 9 or 11, or 1 more padding on the width "
            "axis (e.g. padding=(0, 0, 0, 1))") + "$"):
        spec(height=9, width=10, stride=2)


def test_output_height_not_integer_wrong():
    with pytest.raises(ValueError, match=r"^Output height is not an integer: .* = "
                                         r"\(8 - 5 \+ 1 \+ 1\) / 3 \+ 1 = 2\.66667; use height "
                                         r"6 or 9, or 1 more padding"):
        spec(kernel=5, padding=1, stride=3, width=7)


def test_suggested_fixes_are_valid():
    for size in range(5, 30):
        for stride in (2, 3):
            try:
                spec(width=size, stride=(1, stride))
            except ValueError as e:
                sizes = re.search(r"use width (\d+)(?: or (\d+))?", str(e)).groups()
                for s in filter(None, sizes):
                    spec(width=int(s), stride=(1, stride))
                pads = re.search(r"padding=(\(.*?\))", str(e)).group(1)
                spec(width=size, stride=(1, stride), padding=eval(pads))


@given(size=st.integers(1, 40), k=st.integers(1, 7), d=st.integers(1, 3),
       s=st.integers(1, 4), before=st.integers(0, 4), after=st.integers(0, 4))
def test_output_size_rule(size, k, d, s, before, after):
    k_eff = (k - 1) * d + 1
    span = size + before + after - k_eff
    kw = dict(width=size, kernel=(1, k), dilation=(1, d), stride=(1, s),
              padding=(0, 0, before, after))
    if span < 0 or span % s:
        with pytest.raises(ValueError):
            spec(**kw)
    else:
        assert spec(**kw).output_size[1] == span // s + 1


# -- padding ------------------------------------------------------------------------------------

def test_padding_forms():
    assert spec(padding=1).pads == (1, 1, 1, 1)
    assert spec(padding=(1, 2)).pads == (1, 1, 2, 2)
    assert spec(padding=[0, 1, 2, 0]).pads == (0, 1, 2, 0)
    assert spec(padding="VALID").pads == (0, 0, 0, 0)


@pytest.mark.parametrize("size, k, s, d, pads, out", [
    (8, 3, 1, 1, (1, 1), 8), (8, 4, 1, 1, (1, 2), 8), (8, 3, 1, 2, (2, 2), 8),
    (8, 3, 2, 1, (0, 1), 4), (7, 3, 2, 1, (1, 1), 4), (9, 3, 3, 1, (0, 0), 3),
    (10, 5, 3, 1, (2, 2), 4),
])
def test_padding_same(size, k, s, d, pads, out):
    sp = spec(height=size, width=size, kernel=k, stride=s, dilation=d, padding="same")
    assert sp.pads == pads * 2 and sp.output_size == (out, out)


def test_padding_same_negative_wrong():
    with pytest.raises(ValueError, match=r"^padding='same' needs negative padding on the height "
                                         r"axis \(height 10, kernel 1, stride 4\): .* use "
                                         r"padding='valid' with height 9$"):
        spec(height=10, width=9, kernel=1, stride=4, padding="same")


def test_padding_wrong():
    with pytest.raises(ValueError, match=r"^padding must be an integer, a pair, a 4-tuple, "
                                         r"'same' or 'valid', not 'full'$"):
        spec(padding="full")
    with pytest.raises(ValueError, match=r"^padding must not be negative, not \(1, -1, 0, 0\)$"):
        spec(padding=(1, -1, 0, 0))
    with pytest.raises(ValueError, match=r"^padding must be an integer, an \(h, w\) pair or a "
                                         r"\(top, bottom, left, right\) 4-tuple, not \(1, 2, 3\)$"):
        spec(padding=(1, 2, 3))
    with pytest.raises(TypeError, match=r"^padding must be an integer, a pair, a 4-tuple, "
                                        r"'same' or 'valid', not 1\.5$"):
        spec(padding=1.5)


# -- other bad values ---------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["height", "width", "in_channels", "out_channels", "rows",
                                   "cols", "groups"])
def test_size_wrong(field):
    with pytest.raises(ValueError, match=rf"^{field} must be a positive integer, not 0$"):
        spec(**{field: 0})
    with pytest.raises(TypeError, match=rf"^{field} must be an integer, not 2\.0$"):
        spec(**{field: 2.0})


@pytest.mark.parametrize("field", ["kernel", "stride", "dilation"])
def test_pair_wrong(field):
    with pytest.raises(ValueError, match=rf"^{field} must be a positive integer or pair of "
                                         rf"them, not \(1, 0\)$"):
        spec(**{field: (1, 0)})
    with pytest.raises(TypeError, match=rf"^{field} must be an integer or an \(h, w\) pair of "
                                        rf"integers, not \(1, 2, 3\)$"):
        spec(**{field: (1, 2, 3)})
    with pytest.raises(TypeError, match=rf"^{field} must be an integer or an \(h, w\) pair, "
                                        rf"not True$"):
        spec(**{field: True})


def test_groups_wrong():
    # groups must divide both channel counts; the nearest values that do are named, below and
    # above, then every valid one.
    with pytest.raises(ValueError, match=re.escape(
            "groups 3 does not divide in_channels 8 and out_channels 16; use groups 2 or 4 (the "
            "values that divide both channel counts: 1, 2, 4, 8)") + "$"):
        spec(in_channels=8, out_channels=16, groups=3)
    with pytest.raises(ValueError, match=r"^groups 4 does not divide out_channels 6; use groups "
                                         r"2 \(the values that divide both channel counts: 1, "
                                         r"2\)$"):
        spec(in_channels=8, out_channels=6, groups=4)
    with pytest.raises(ValueError, match=r"^groups 9 does not divide in_channels 8 and "
                                         r"out_channels 8; use groups 8 \(the values"):
        spec(in_channels=8, out_channels=8, groups=9)
    with pytest.raises(TypeError, match=r"^groups must be an integer, not True$"):
        spec(groups=True)


def test_groups_figures():
    # Depthwise, channel multiplier 2, on a 4 x 2 array: a group's reduction is the 9 taps of
    # its one input channel (3 folds of 4 rows), its 2 filters one block of 2 columns, 8 groups.
    sp = spec(in_channels=8, out_channels=16, groups=8, padding=1, rows=4, cols=2)
    assert sp.weight_shape == (16, 1, 3, 3)
    assert (sp.in_per_group, sp.out_per_group) == (1, 2)
    assert sp.reduction == 9
    assert (sp.row_folds, sp.col_folds, sp.blocks, sp.cycles_per_pixel) == (3, 1, 8, 24)
    assert sp.macs == 8 * 8 * 16 * 9
    assert sp.idle_cols == 0
    assert sp.load_beats == 24 * 8 + 16
    assert sp.weight_memory_bits == 8 * 24 * 8            # 8 PEs, a word per cycle of a pixel
    assert sp.channel_slots[:4] == ((0, 0), (0, 1), (1, 0), (1, 1))
    # 2 groups of 3 filters on 2 columns: two blocks a group, the second using one column
    sp = spec(in_channels=4, out_channels=6, groups=2, rows=4, cols=2)
    assert (sp.col_folds, sp.blocks) == (2, 4)
    assert sp.channel_slots == ((0, 0), (0, 1), (1, 0), (2, 0), (2, 1), (3, 0))
    # more columns than a group's filters: idle columns, counted in the utilization
    sp = spec(in_channels=4, out_channels=4, groups=4, rows=9, cols=4, padding=1)
    assert sp.idle_cols == 3 and sp.cycles_per_pixel == 4
    assert sp.utilization < 0.25


def test_groups_from_toml(tmp_path):
    path = write(tmp_path, '[layer]\nheight = 6\nwidth = 6\nin_channels = 4\n'
                           'out_channels = 8\nkernel = 3\ngroups = 4\n')
    assert ConvSpec.from_toml(path).weight_shape == (8, 1, 3, 3)
    path = write(tmp_path, '[layer]\nheight = 6\nwidth = 6\nin_channels = 4\n'
                           'out_channels = 8\nkernel = 3\ngroups = 3\n')
    with pytest.raises(ConfigError, match=r"^.*layer\.toml: groups 3 does not divide "
                                          r"in_channels 4 and out_channels 8; use groups 2 or "
                                          r"4 \("):
        ConvSpec.from_toml(path)


def test_kernel_larger_than_input_wrong():
    with pytest.raises(ValueError, match=r"^The kernel 3 dilated to 5 is larger than the padded "
                                         r"width 4 \(width 4 \+ padding 0 \+ 0\); use a width "
                                         r"of at least 5 or more padding$"):
        spec(width=4, dilation=2)


@pytest.mark.parametrize("field", ["input_bits", "weight_bits", "bias_bits"])
def test_bits_wrong(field):
    for bad in (1, 33):
        with pytest.raises(ValueError, match=rf"^{field} must be between 2 and 32, not {bad}$"):
            spec(**{field: bad})


def test_pad_value_wrong():
    with pytest.raises(ValueError, match=r"^pad_value 128 does not fit 8-bit signed inputs "
                                         r"\(-128\.\.127\)$"):
        spec(pad_value=128)
    with pytest.raises(ValueError, match=r"^pad_value -1 does not fit 4-bit unsigned inputs "
                                         r"\(0\.\.15\)$"):
        spec(pad_value=-1, input_bits=4, input_signed=False)


def test_name_wrong():
    with pytest.raises(ValueError, match=r"^name must be a Verilog identifier .*not '3x3'$"):
        spec(name="3x3")


def test_input_signed_wrong():
    with pytest.raises(TypeError, match=r"^input_signed must be a bool, not 1$"):
        spec(input_signed=1)


# -- derived figures ----------------------------------------------------------------------------

def test_normalized():
    sp = spec(kernel=[3, 5], stride=2, padding=(1, 2), height=9, width=9)
    assert sp.kernel == (3, 5) and sp.stride == (2, 2) and sp.dilation == (1, 1)
    assert sp == spec(kernel=(3, 5), stride=(2, 2), padding=(1, 1, 2, 2), height=9, width=9)
    assert hash(sp) == hash(spec(kernel=(3, 5), stride=(2, 2), padding=(1, 1, 2, 2), height=9,
                                width=9))


def test_shapes():
    sp = spec(height=9, width=12, kernel=(3, 5), padding=(0, 0, 2, 1), stride=(2, 1),
              dilation=(1, 2))
    assert sp.kernel_eff == (3, 9)
    assert sp.padded_shape == (9, 15)
    assert sp.output_shape == (4, 4, 7)
    assert sp.input_shape == (3, 9, 12)
    assert sp.weight_shape == (4, 3, 3, 5)


def test_folding_and_memories():
    sp = spec(rows=4, cols=3, kernel=3, padding=1, dilation=(2, 1), height=9)
    assert sp.reduction == 27
    assert (sp.row_folds, sp.col_folds, sp.cycles_per_pixel) == (7, 2, 14)
    assert sp.output_size == (7, 8)
    assert sp.macs == 7 * 8 * 4 * 27
    # dilation 2 in height keeps 4 rows of the padded width, every channel, 8 bits each
    assert sp.line_buffer_bits == 4 * 10 * 3 * 8
    assert sp.weight_memory_bits == 12 * 14 * 8


def test_acc_bits():
    # 8x8 signed products reach 2^14; 27 of them plus a 32-bit bias need 33 bits
    assert spec(kernel=3).acc_bits == 33
    # with a 16-bit bias: 27 * 2^14 + 2^15 - 1 = 475135 < 2^19, so 20 bits
    assert spec(kernel=3, bias_bits=16).acc_bits == 20
    assert spec(kernel=3, bias_bits=16).acc_range == (27 * -128 * 127 - 2**15,
                                                      27 * 2**14 + 2**15 - 1)
    # unsigned 8-bit inputs: products from 255 * -128 to 255 * 127
    assert spec(kernel=1, in_channels=1, input_signed=False, bias_bits=2).acc_range == (
        255 * -128 - 2, 255 * 127 + 1)


def test_cycle_model_bounds():
    # The model is never faster than the array's folding bound nor than one pixel per cycle,
    # and never slower than their sum plus the pipeline's fill and drain.
    for sp in [DEFAULT_SPEC, spec(rows=64, cols=8), spec(stride=2, padding=(0, 1, 0, 1)),
               spec(kernel=1, rows=1, cols=1),
               spec(in_channels=4, out_channels=8, groups=4, rows=3, cols=1)]:
        out_pixels = sp.output_size[0] * sp.output_size[1]
        pixels = sp.padded_shape[0] * sp.padded_shape[1]
        fill = sp.front_latency + sp.back_latency + 1
        assert sp.cycles >= max(out_pixels * sp.cycles_per_pixel, pixels)
        assert sp.cycles <= out_pixels * sp.cycles_per_pixel + pixels + fill


def test_cycle_model_pixel_bound():
    # A large array: one cycle per output pixel, so the padded frame's pixels are the bound.
    sp = spec(height=6, width=6, in_channels=1, out_channels=1, kernel=1, rows=1, cols=1)
    assert sp.cycles_per_pixel == 1
    assert sp.cycles == sp.front_latency + 36 - 1 + 1 + sp.back_latency + 1


def test_figures_json():
    figures = DEFAULT_SPEC.figures()
    json.dumps(figures)
    assert figures["output_shape"] == [8, 16, 16]
    assert figures["cycles"] == DEFAULT_SPEC.cycles
    assert ConvSpec(**DEFAULT_SPEC.parameters()) == DEFAULT_SPEC


# -- configuration files ------------------------------------------------------------------------

def write(tmp_path, text):
    path = tmp_path / "layer.toml"
    path.write_text(text)
    return path


def test_from_toml(tmp_path):
    path = write(tmp_path, 'name = "edge"\n[layer]\nheight = 9\nwidth = 9\nin_channels = 1\n'
                           'out_channels = 2\nkernel = [3, 1]\npadding = "same"\n'
                           'pad_value = -3\n[array]\nrows = 2\ncols = 2\n')
    sp = ConvSpec.from_toml(path)
    assert sp == ConvSpec(height=9, width=9, in_channels=1, out_channels=2, kernel=(3, 1),
                          padding="same", pad_value=-3, rows=2, cols=2, name="edge")


def test_examples_load():
    from pathlib import Path
    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))
    assert len(examples) >= 3
    for path in examples:
        assert ConvSpec.from_toml(path).name == path.stem


def test_from_toml_unknown_key_wrong(tmp_path):
    path = write(tmp_path, "[layer]\nheight = 9\nwidth = 9\nin_channels = 1\n"
                           "out_channels = 2\nkernel = 3\nkernal = 3\n")
    with pytest.raises(ConfigError, match=r"^.*layer\.toml: unknown key 'kernal' in \[layer\]; "
                                          r"valid keys are height, width, in_channels, .*"
                                          r"input_signed, requantize$"):
        ConvSpec.from_toml(path)


def test_from_toml_unknown_table_wrong(tmp_path):
    path = write(tmp_path, "[layer]\nheight = 9\n[arrays]\nrows = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'arrays' in the top level; valid keys "
                                          r"are name, layer, array$"):
        ConvSpec.from_toml(path)


def test_from_toml_missing_wrong(tmp_path):
    path = write(tmp_path, "[layer]\nheight = 9\nwidth = 9\n")
    with pytest.raises(ConfigError, match=r"\[layer\] needs in_channels, out_channels, kernel$"):
        ConvSpec.from_toml(path)


def test_from_toml_bad_value_wrong(tmp_path):
    path = write(tmp_path, "[layer]\nheight = 10\nwidth = 10\nin_channels = 1\n"
                           "out_channels = 2\nkernel = 3\nstride = 2\n")
    with pytest.raises(ConfigError, match=r"layer\.toml: Output height is not an integer"):
        ConvSpec.from_toml(path)


def test_from_toml_syntax_wrong(tmp_path):
    with pytest.raises(ConfigError, match=r"layer\.toml: not valid TOML: "):
        ConvSpec.from_toml(write(tmp_path, "[layer\n"))


def test_from_toml_missing_file_wrong(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.toml: cannot read the file: No such file"):
        ConvSpec.from_toml(tmp_path / "nope.toml")


# -- the layer and its folding -------------------------------------------------------------------

def test_layer_and_folding_apart():
    import numpy as np

    from convaccel import ConvLayer, Folding, golden
    layer = DEFAULT_SPEC.layer
    assert type(layer) is ConvLayer and not hasattr(layer, "rows")
    assert DEFAULT_SPEC.folding == Folding(rows=4, cols=2)
    assert ConvSpec.of(layer, Folding(4, 2)) == DEFAULT_SPEC
    # The golden model keys on the layer alone: every folding of it computes the same.
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, layer.input_shape)
    w = rng.integers(-128, 128, layer.weight_shape)
    expected = golden.conv2d(x, w, None, layer)
    for folding in (Folding(1, 1), Folding(5, 3), Folding(36, 8)):
        assert np.array_equal(golden.conv2d(x, w, None, ConvSpec.of(layer, folding)), expected)
    # ...while the engine's figures follow the folding.
    assert ConvSpec.of(layer, Folding(1, 1)).cycles > ConvSpec.of(layer, Folding(4, 2)).cycles


def test_folding_wrong():
    from convaccel import Folding
    with pytest.raises(ValueError, match=r"^rows must be a positive integer, not 0$"):
        Folding(rows=0, cols=2)
    with pytest.raises(TypeError, match=r"^cols must be an integer, not 2\.0$"):
        Folding(rows=1, cols=2.0)


def test_engine_figures_are_the_stages_sums():
    # The spec restates no latency: they are the stages' own, added up.
    from convaccel.hdl.accelerator import ConvAccelerator
    sp = spec(kernel=(3, 5), stride=(2, 1), padding=(1, 1, 2, 2), rows=3, cols=2, height=9)
    padder, queue, window, feeder, array, output = ConvAccelerator(sp).stages
    assert sp.front_latency == (padder.start_cycles + padder.latency + queue.latency
                                + window.latency)
    assert sp.back_latency == array.latency + output.latency
    assert array.latency == sp.rows + sp.cols + 2
    assert feeder.interval == sp.cycles_per_pixel
    assert sp.output_queue_depth == output.queue_depth
    assert sp.load_beats == sp.cycles_per_pixel * sp.pe_count + sp.out_channels


def test_from_toml_without_array(tmp_path):
    # A layer file with no [array] table gets the default folding.
    from convaccel import Folding
    path = write(tmp_path, '[layer]\nheight = 5\nwidth = 5\nin_channels = 1\n'
                           'out_channels = 2\nkernel = 3\n')
    assert ConvSpec.from_toml(path).folding == Folding()


def test_from_toml_binary_wrong(tmp_path):
    path = tmp_path / "net.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3\xff\xfe")
    with pytest.raises(ConfigError, match=r"net\.tflite: the file holds a \.tflite model; this "
                                          r"convaccel reads layer configurations in TOML"):
        ConvSpec.from_toml(path)
    path = tmp_path / "noise.toml"
    path.write_bytes(bytes(range(128, 256)))
    with pytest.raises(ConfigError, match=r"noise\.toml: the file holds binary data, not a "
                                          r"TOML layer configuration"):
        ConvSpec.from_toml(path)


# -- padding modes and pad values ---------------------------------------------------------------

def test_padding_modes_and_pad_values():
    assert spec().padding_mode == "constant" and spec().pad_values == (0, 0, 0)
    assert spec(padding_mode="Reflect", padding=1).padding_mode == "reflect"
    sp = spec(pad_value=[1, -2, 3], padding=1)
    assert sp.pad_value == (1, -2, 3) and sp.pad_values == (1, -2, 3)
    assert spec(pad_value=5).pad_values == (5, 5, 5)
    # the normalized parameters (a list for the values) rebuild the layer
    assert sp.parameters()["pad_value"] == [1, -2, 3]
    assert ConvSpec(**sp.parameters()) == sp
    # where each padded row comes from: PyTorch's rules, None for a constant row
    assert spec(height=3, padding=(2, 2, 0, 0)).source_index(0) == (
        None, None, 0, 1, 2, None, None)
    assert spec(height=3, padding=(2, 2, 0, 0), padding_mode="replicate").source_index(0) == (
        0, 0, 0, 1, 2, 2, 2)
    assert spec(height=3, padding=(2, 2, 0, 0), padding_mode="reflect").source_index(0) == (
        2, 1, 0, 1, 2, 1, 0)


def test_run_time_pad_values_load():
    plain = spec(padding=1, rows=2, cols=2)
    sp = spec(padding=1, rows=2, cols=2, pad_runtime=True)
    # three more beats (one per input channel) at the end of the load
    assert sp.load_beats == plain.load_beats + 3 == sp.cycles_per_pixel * 4 + 4 + 3
    # a load beat holds an unsigned 16-bit input when the weights and bias are narrower
    wide = spec(pad_runtime=True, input_bits=16, input_signed=False, weight_bits=8,
                bias_bits=8)
    assert wide.load_bits == 17
    assert spec(pad_runtime=True, bias_bits=8).load_bits == 8


def test_edge_padder_figures():
    # replicate: one cycle (the row memory's read) more than constant padding; reflect: the
    # first padded pixel's source, input pixel top * width + left, must have arrived
    const = spec(height=6, width=7, padding=(2, 1, 3, 1), rows=2, cols=2)
    rep = spec(height=6, width=7, padding=(2, 1, 3, 1), padding_mode="replicate", rows=2, cols=2)
    ref = spec(height=6, width=7, padding=(2, 1, 3, 1), padding_mode="reflect", rows=2, cols=2)
    assert rep.cycles == const.cycles + 1
    assert ref.cycles == const.cycles + 2 * 7 + 3 + 1
    # memory: 2 rows (replicate), max(2, top + 1, bottom + 1) rows (reflect) of the input
    # width, every channel
    assert const.padder_memory_bits == 0
    assert rep.padder_memory_bits == 2 * 7 * 3 * 8
    assert ref.padder_memory_bits == 3 * 7 * 3 * 8
    # without padding, nothing to take from the edge: the constant padder, no memory
    assert spec(padding=0, padding_mode="reflect").padder_memory_bits == 0


@pytest.mark.parametrize("kw, error, message", [
    (dict(padding_mode="circular", padding=1), ValueError,
     r"^padding_mode 'circular' needs a frame buffer \(its top padding rows are the frame's "
     r"last rows, which arrive last\) and this engine streams without one; use padding_mode "
     r"'constant', 'replicate' or 'reflect'$"),
    (dict(padding_mode="edge"), ValueError,
     r"^padding_mode must be 'constant', 'replicate' or 'reflect', not 'edge'$"),
    (dict(padding_mode=1), TypeError,
     r"^padding_mode must be 'constant', 'replicate' or 'reflect', not 1$"),
    (dict(padding_mode="reflect", height=3, padding=(1, 3, 0, 0)), ValueError,
     r"^padding_mode 'reflect' needs each side's padding smaller than the frame: padding "
     r"bottom 3 >= height 3; use padding of at most 2 on the height axis, or padding_mode "
     r"'replicate'$"),
    (dict(padding_mode="reflect", width=1, padding="same"), ValueError,
     r"^padding_mode 'reflect' needs each side's padding smaller than the frame: padding "
     r"left 1 >= width 1; use padding of at most 0 on the width axis, or padding_mode "
     r"'replicate'$"),
    (dict(padding_mode="replicate", pad_value=3, padding=1), ValueError,
     r"^pad_value applies to padding_mode 'constant' only; padding_mode 'replicate' takes the "
     r"border from the frame: remove pad_value or use padding_mode 'constant'$"),
    (dict(padding_mode="reflect", pad_runtime=True, padding=1), ValueError,
     r"^pad_runtime applies to padding_mode 'constant' only; padding_mode 'reflect' takes "
     r"the border from the frame: remove pad_runtime or use padding_mode 'constant'$"),
    (dict(pad_runtime=1), TypeError, r"^pad_runtime must be a bool, not 1$"),
    (dict(pad_value=[1, 2]), ValueError,
     r"^pad_value must have one value per input channel \(in_channels = 3\), not 2; or give "
     r"one integer for all$"),
    (dict(pad_value=[1, 2, 200]), ValueError,
     r"^pad_value\[2\] = 200 does not fit 8-bit signed inputs \(-128\.\.127\)$"),
    (dict(pad_value=[1, 2.5, 3]), TypeError,
     r"^pad_value must be an integer or a list of one integer per input channel, not "
     r"\[1, 2\.5, 3\]$"),
    (dict(pad_value="zero"), TypeError,
     r"^pad_value must be an integer or a list of one integer per input channel, not 'zero'$"),
])
def test_padding_mode_wrong(kw, error, message):
    with pytest.raises(error, match=message):
        spec(**kw)


def test_padding_mode_from_toml(tmp_path):
    path = write(tmp_path, '[layer]\nheight = 5\nwidth = 5\nin_channels = 2\nout_channels = 1\n'
                           'kernel = 3\npadding = 1\npad_value = [-3, 4]\npad_runtime = true\n')
    assert ConvSpec.from_toml(path).pad_values == (-3, 4)
    path = write(tmp_path, '[layer]\nheight = 5\nwidth = 5\nin_channels = 2\nout_channels = 1\n'
                           'kernel = 3\npadding = 1\npadding_mode = "reflect"\n')
    assert ConvSpec.from_toml(path).padding_mode == "reflect"
    path = write(tmp_path, '[layer]\nheight = 5\nwidth = 5\nin_channels = 2\nout_channels = 1\n'
                           'kernel = 3\npadding = 1\npadding_mode = "circular"\n')
    with pytest.raises(ConfigError, match=r"layer\.toml: padding_mode 'circular' needs a frame "
                                          r"buffer"):
        ConvSpec.from_toml(path)


def test_lanes_wrong():
    # the channel-serial engine's constraints, each refused with the values that would do
    layer = dict(height=6, width=6, in_channels=6, out_channels=4, kernel=3, padding=1)
    with pytest.raises(ValueError, match=r"^lanes 4 does not divide in_channels 6: a pixel is "
                                         r"in_channels / lanes beats; use lanes in 1, 2, 3, 6$"):
        ConvSpec(**layer, rows=2, cols=2, lanes=4)
    with pytest.raises(ValueError, match=r"^rows 2 does not divide lanes 3: .* use rows in "
                                         r"1, 3 \(or leave lanes unset\)$"):
        ConvSpec(**layer, rows=2, cols=2, lanes=3)
    with pytest.raises(ValueError, match=r"^cols 3 does not divide out_channels 4: .* use cols "
                                         r"in 1, 2, 4 \(or leave lanes unset\)$"):
        ConvSpec(**layer, rows=2, cols=3, lanes=2)
    with pytest.raises(ValueError, match=r"^lanes \(the channel-serial engine\) needs groups = "
                                         r"1, not 2: leave lanes unset for a grouped layer$"):
        ConvSpec(**layer, groups=2, rows=1, cols=2, lanes=3)


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_lanes_edge_padding_wrong(mode):
    layer = dict(height=6, width=6, in_channels=4, out_channels=4, kernel=3, rows=2, cols=2,
                 lanes=2, padding_mode=mode)
    with pytest.raises(ValueError, match=rf"^padding_mode '{mode}' is not available with lanes "
                                         r"\(the channel-serial engine pads with constant values "
                                         r"only\): use padding_mode 'constant' or leave lanes "
                                         r"unset$"):
        ConvSpec(**layer, padding=1)
    # without padding the mode does not matter
    assert ConvSpec(**layer, padding="valid").serial


# -- the requantizer's multiplier (a folding choice) -------------------------------------------

QLAYER = dict(height=6, width=6, in_channels=4, out_channels=4, kernel=3, padding=1,
              requantize=True)


def test_requant_multiplier():
    # 36 folds at rows 1: a group every 36 cycles, two fabric multipliers a pass of 16 cycles
    fabric = ConvSpec(**QLAYER, rows=1, cols=4, requant_multiplier="fabric")
    dsp = ConvSpec(**QLAYER, rows=1, cols=4)
    assert dsp.requant_multiplier == "dsp" and dsp.folding.requant_multiplier == "dsp"
    assert fabric.folding == Folding(1, 4, None, "fabric")
    assert ConvSpec.of(fabric.layer, fabric.folding) == fabric
    assert fabric.engine.multipliers == () and len(dsp.engine.multipliers) == 4
    # the same folds, a longer requantizer: a few cycles more per frame
    assert dsp.cycles_per_pixel == fabric.cycles_per_pixel and dsp.cycles < fabric.cycles


def test_requant_multiplier_toml(tmp_path):
    text = ('[layer]\nheight = 6\nwidth = 6\nin_channels = 4\nout_channels = 4\nkernel = 3\n'
            'requantize = true\n[array]\nrows = 1\ncols = 2\nrequant_multiplier = "{}"\n')
    path = tmp_path / "layer.toml"
    path.write_text(text.format("fabric"))
    assert ConvSpec.from_toml(path).requant_multiplier == "fabric"
    path.write_text(text.format("lut"))
    with pytest.raises(ConfigError, match=r"^.*layer\.toml: requant_multiplier must be 'dsp' or "
                                          r"'fabric', not 'lut'$"):
        ConvSpec.from_toml(path)


def test_requant_multiplier_wrong():
    with pytest.raises(TypeError, match=r"^requant_multiplier must be a string, not True$"):
        Folding(2, 2, requant_multiplier=True)
    with pytest.raises(ValueError, match=r"^requant_multiplier must be 'dsp' or 'fabric', not "
                                         r"'DSP'$"):
        ConvSpec(**QLAYER, requant_multiplier="DSP")
    with pytest.raises(ValueError, match=r"^requant_multiplier 'fabric' applies to a requantized "
                                         r"layer only \(requantize = true\); a raw layer has no "
                                         r"requantizer: remove requant_multiplier or leave it "
                                         r"'dsp'$"):
        ConvSpec(**{**QLAYER, "requantize": False}, rows=1, requant_multiplier="fabric")
    # 36 / 4 = 9 folds: a group every 9 cycles, a fabric multiplier busy for 16
    with pytest.raises(ValueError, match=r"^requant_multiplier 'fabric' needs a group of "
                                         r"accumulators at most every 16 cycles \(row_folds >= "
                                         r"16, .*\), not every 9 \(reduction 36 over 4 rows\); "
                                         r"use rows <= 2 or requant_multiplier 'dsp'$"):
        ConvSpec(**QLAYER, rows=4, cols=2, requant_multiplier="fabric")
    with pytest.raises(ValueError, match=r"^requant_multiplier 'fabric' needs row_folds >= 16 "
                                         r".*, and the reduction 9 gives at most 9 at rows = 1: "
                                         r"use requant_multiplier 'dsp'$"):
        ConvSpec(**{**QLAYER, "in_channels": 1}, rows=1, cols=1, requant_multiplier="fabric")
    # 18 folds: one pass of at most 16 multipliers
    with pytest.raises(ValueError, match=r"^requant_multiplier 'fabric' takes at most 16 columns "
                                         r"with 18 folds .*, not cols 17; use cols <= 16, fewer "
                                         r"rows or requant_multiplier 'dsp'$"):
        ConvSpec(**{**QLAYER, "out_channels": 17}, rows=2, cols=17,
                 requant_multiplier="fabric")
