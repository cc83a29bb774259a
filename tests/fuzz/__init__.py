"""Fuzzing the generator: hypothesis strategies (strategies.py) and the runner of `make fuzz`
(run.py)."""
