# The two commands a new user types: `make demo` and `make test`.
# Both create .venv in the repository root, install convaccel and everything it needs from PyPI
# into it (once: the stamp file is newer than pyproject.toml afterwards), then do their job.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
# The tests run on every core (pytest-xdist): the builds and simulations are single-threaded.
# `make test TEST_JOBS=0` runs them in one process.
TEST_JOBS ?= auto
# `make fuzz` tries FUZZ_EXAMPLES random layers per cheap property (figures, golden model,
# refusals) and fewer of the costly ones (Verilog and lint, amaranth.sim, cocotb): about 7
# minutes on 2 idle cores at 2000. FUZZ_SEED=S repeats a run.
FUZZ_EXAMPLES ?= 2000

.PHONY: demo test fuzz install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --editable '.[test,bench]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/convaccel demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -n $(TEST_JOBS) --dist worksteal $(PYTEST_ARGS)

fuzz: $(STAMP)
	$(VENV)/bin/python tests/fuzz/run.py $(FUZZ_EXAMPLES) -n $(TEST_JOBS) --dist loadgroup $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache
