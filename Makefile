# Two commands do everything on a fresh machine:  make demo  and  make test.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-all bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)  ## flagship experiment: PNAS 2018 Fig. 1 into results/pnas-isotropic/
	$(VENV)/bin/mfnn run pnas-isotropic --out results/pnas-isotropic --overwrite

test: $(STAMP)  ## the test suite a newcomer runs (under 15 min on 2 cores); CI runs it and test-slow
	$(PY) -m pytest -q -m "not slow" --durations=25

test-slow: $(STAMP)  ## slow numerical validations (marked slow), run by CI after make test
	$(PY) -m pytest -q -m slow --durations=25

test-all: test test-slow

bench: $(STAMP)  ## SGD throughput vs NumPy, JAX and PyTorch loops (torch: pip install -e '.[bench]')
	$(PY) benchmarks/sgd_throughput.py

docs: $(VENV)/.docs-installed  ## the documentation site into site/ (tutorials executed; offline: math as MathML)
	NO_MKDOCS_2_WARNING=1 JAX_PLATFORMS=cpu $(PY) -m mkdocs build --strict
	$(PY) scripts/check_offline.py site
	$(PY) -m pytest -q -p no:cacheprovider -m slow tests/test_docs_site.py  # headless chromium (skips without it)

$(VENV)/.docs-installed: $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $@

clean:
	rm -rf $(VENV) results .pytest_cache site
