"""convaccel: a generator of bit-exact FPGA convolution accelerators."""

from importlib.metadata import PackageNotFoundError, version

from .spec import DEFAULT_SPEC, ConfigError, ConvLayer, ConvSpec, Folding
from . import golden

try:
    __version__ = version("convaccel")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"

__all__ = ["ConvLayer", "Folding", "ConvSpec", "DEFAULT_SPEC", "ConfigError", "golden",
           "__version__"]
