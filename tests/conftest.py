import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A generator seeded from the test's name: the same data on every run and every worker
    (Python's `hash` of a string changes from process to process)."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))
