import sys
from pathlib import Path

# The stream helpers shared with the engine's component tests (tests/hdl/simutil.py).
sys.path.insert(0, str(Path(__file__).parents[1] / "hdl"))
