# Two commands do everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## flagship experiment: PNAS 2018 Fig. 1 into results/pnas-isotropic/
	$(VENV)/bin/mfnn run pnas-isotropic --out results/pnas-isotropic --overwrite

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(PY) -m pytest -q

test-fast: $(STAMP)  ## skip tests marked slow
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)  ## SGD throughput vs NumPy, JAX and PyTorch loops (torch: pip install -e '.[bench]')
	$(PY) benchmarks/sgd_throughput.py

clean:
	rm -rf $(VENV) results .pytest_cache
