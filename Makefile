# The two commands a new user types: `make demo` and `make test`.
# Both create .venv in the repository root, install convaccel and everything it needs from PyPI
# into it (once: the stamp file is newer than pyproject.toml afterwards), then do their job.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet --editable '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/convaccel demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build .pytest_cache
