"""``make fuzz``: tests/test_fuzz.py on many random layers, and tests/link/test_link_fuzz.py on
many random byte streams to the host link, then what the run did.

    python tests/fuzz/run.py [EXAMPLES] [pytest options...]

``EXAMPLES`` (default 2000) random examples of the cheap properties (figures and golden model,
refusals), fewer of the costly ones (tests/test_fuzz.py's ``SHARES``: generation and lint,
amaranth.sim, cocotb). The counts printed at the end are summed from every example that ran,
on every pytest-xdist worker. Hypothesis's seed is printed: ``FUZZ_SEED=S`` repeats a run, and
a failure is also replayed first on the next run (hypothesis's database in ``.hypothesis/``).
Simulator builds go to a temporary cache, removed afterwards, unless ``CONVACCEL_CACHE`` is set.
"""

import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


class FuzzCounts:
    """A pytest plugin: sums the counts each property hands over in its report and prints
    them at the end."""

    def __init__(self):
        self.counts = Counter()
        self.failed_tests = []

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed_tests.append(report.nodeid)
        if report.when == "teardown":
            for key, value in report.user_properties:
                if key == "fuzz_counts":
                    self.counts.update(value)

    def pytest_terminal_summary(self, terminalreporter):
        c = self.counts
        write = terminalreporter.write_line
        terminalreporter.section("convaccel fuzz")
        write(f"tried       {c['tried']} layers ({c['tried_valid']} valid, "
              f"{c['tried_invalid']} invalid)")
        write(f"valid       {c['golden']} through the figures and the golden model, "
              f"{c['generated']} generated ({c['linted']} linted)")
        write(f"simulated   {c['simulated_amaranth']} amaranth.sim, "
              f"{c['simulated_cocotb']} cocotb (Verilator)")
        write(f"refused     {c['refused']} invalid, each naming the wrong parameter")
        write(f"link        {c['link_streams']} byte streams to the host link "
              f"({c['link_garbage_bytes']} bytes, {c['link_garbage_responses']} answers, "
              f"{c['link_TIMEOUT']} timeouts), each then silence, RESET and an exact frame")
        write(f"failed      {c['failed']} examples" + (
            f" (hypothesis's shrinking included), in {', '.join(self.failed_tests)}"
            if self.failed_tests else ""))


def main(argv):
    examples = argv[0] if argv and argv[0].isdigit() else "2000"
    pytest_args = argv[1:] if argv and argv[0].isdigit() else argv
    seed = os.environ.get("FUZZ_SEED") or str(random.randrange(2**32))
    os.environ["CONVACCEL_FUZZ"] = examples
    cache = None
    if not os.environ.get("CONVACCEL_CACHE"):
        cache = tempfile.mkdtemp(prefix="convaccel-fuzz-")
        os.environ["CONVACCEL_CACHE"] = cache
    os.chdir(ROOT)
    print(f"convaccel fuzz: {examples} examples, hypothesis seed {seed} (FUZZ_SEED={seed} "
          f"repeats this run)", flush=True)
    plugin = FuzzCounts()
    start = time.monotonic()
    try:
        status = pytest.main(["tests/test_fuzz.py", "tests/link/test_link_fuzz.py",
                              f"--hypothesis-seed={seed}",
                              "-p", "no:cacheprovider", *pytest_args], plugins=[plugin])
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    print(f"convaccel fuzz: {time.monotonic() - start:.0f} s", flush=True)
    return int(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
