"""The bench of issue #15, as a script: the same as ``convaccel bench`` (its options too).

    .venv/bin/python benchmarks/bench.py --boards icebreaker,ulx3s-85f --seeds 3
    .venv/bin/python benchmarks/bench.py --quick --no-build       # seconds, amaranth.sim

Writes benchmarks/results.json, benchmarks/results.md and the plots (utilization.png,
mmacs.png) that the README shows; the code is :mod:`convaccel.bench`.
"""

import sys

from convaccel.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
