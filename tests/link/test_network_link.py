# amaranth: UnusedElaboratable=no
"""A network behind the serial host link: the board top's Verilog under cocotb, the real host
driver (NetworkDevice) sending the input tensor and reading the output tensor."""

from pathlib import Path

import numpy as np
import pytest

from convaccel.boards import get_board
from convaccel.compiler import compile_network
from convaccel.link.network import NetworkLinkSpec
from convaccel.link.protocol import LinkFormat
from convaccel.network import load_network

DIGITS = Path(__file__).parents[2] / "examples" / "digits"


def test_network_link_format():
    """The link's figures of a network: an input pixel is its channels, a result unit an
    output beat; no weight load."""
    net = load_network(DIGITS / "digits.tflite")
    plan = compile_network(net, get_board("tangnano9k"))
    spec = NetworkLinkSpec(plan)
    fmt = LinkFormat(spec)
    assert spec.load_beats == 0
    assert fmt.pixel_bytes == net.input_shape[3]
    assert spec.output_pixels * spec.out_channels == int(np.prod(net.output_shape))


@pytest.mark.full
def test_network_on_simulated_board():
    """The digits network on the Tang Nano 9K's plan: the device's output tensor equals the
    golden model's; its status counts the network's MACs; the LEDs say loaded, done, idle."""
    from convaccel.link.sim import run_simulated_network
    model = DIGITS / "digits.tflite"
    net = load_network(model)
    board = get_board("tangnano9k")
    plan = compile_network(net, board)
    x = np.load(DIGITS / "digits_test.npz")["x"][0]
    run = run_simulated_network(plan, model, board, [x])
    assert run.passed, run.message
    np.testing.assert_array_equal(run.outputs[0], net.golden(x))
    assert run.report["status"]["macs"] == net.macs
