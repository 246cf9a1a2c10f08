# gaussmix: `make demo` and `make test` build the virtual environment themselves.
# `make bench BENCH_ARGS=--quick` runs the benchmark at N/10.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps on one .venv: the demo's (what `gaussmix fit` needs: click and matplotlib besides
# the package's own dependencies), and the tests' on top of it (pytest, Dask, HDF5/Zarr, torch), so that a first
# `make demo` does not wait minutes for torch and Dask it never imports.
DEMO_STAMP := $(VENV)/.installed-demo
STAMP := $(VENV)/.installed

.PHONY: venv demo test test-all bench bench-missing bench-bayesian bench-kernels bench-outofcore bench-dask bench-small bench-select bench-gpu clean

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cli,plot]"
	touch $(DEMO_STAMP)

# The report tests render in a headless chromium (skipped without one): install it where we
# may (root on Debian); a failure here never stops the build.
$(STAMP): $(DEMO_STAMP)
	$(PY) -m pip install -q -e ".[test,plot,cli]"
	$(PY) -m pip install -q torch==2.13.0
	command -v chromium >/dev/null 2>&1 || ((apt-get update -q >/dev/null 2>&1; apt-get install -y -q chromium >/dev/null 2>&1) || \
		echo "note: chromium not installed; the report's browser tests will be skipped") || true
	touch $(STAMP)

venv: $(STAMP)

demo: $(DEMO_STAMP)
	$(PY) -m gaussmix.demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow and not gpu"

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not gpu"

bench: $(STAMP) bench-outofcore bench-dask
	$(PY) benchmarks/bench_em.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_bayesian.py $(BENCH_ARGS)
	$(PY) benchmarks/bench_missing.py $(BENCH_ARGS)

# Incomplete rows (missing="marginalize", 10 % MCAR) against the same rows complete, per iteration.
bench-missing: $(STAMP)
	$(PY) benchmarks/bench_missing.py $(BENCH_ARGS)

# One E-step chunk per case, float64 against float32, one thread (steadier than whole fits).
bench-kernels: $(STAMP)
	$(PY) benchmarks/bench_kernels.py $(BENCH_ARGS)

bench-outofcore: $(STAMP)
	$(PY) benchmarks/bench_outofcore.py

bench-dask: $(STAMP)
	cd benchmarks && ../$(PY) bench_dask.py

bench-small: $(STAMP)
	$(PY) benchmarks/bench_small.py

# BayesianGaussianMixture per iteration against scikit-learn's (BENCH_ARGS=--quick: N/10).
bench-bayesian: $(STAMP)
	$(PY) benchmarks/bench_bayesian.py $(BENCH_ARGS)

bench-select: $(STAMP)
	$(PY) benchmarks/bench_select.py

# On a CUDA machine: the four cases of issue 7. Without CUDA it runs on the CPU build of torch;
# pass BENCH_GPU_ARGS=--quick there.
bench-gpu: $(STAMP)
	$(PY) benchmarks/bench_gpu.py $(BENCH_GPU_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
