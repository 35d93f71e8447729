# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Keep TensorFlow's start-up chatter out of test output.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test bench install clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

install: $(VENV)/.installed

demo: install
	@echo "Example suite: a Keras model trained on scikit-learn's breast-cancer data, and tests"
	@echo "of what it learned (examples/test_breast_cancer.py). The kexplain section at the end"
	@echo "lists every explanation, and whether it was computed or reused from the cache."
	$(PY) -m pytest examples -p no:cacheprovider --kexplain-report=reports/demo-report.md -v
	@echo
	@echo "Report written to reports/demo-report.md. Next: read examples/test_breast_cancer.py,"
	@echo "then README.md for the checks and the baseline gate (pytest --kexplain-update)."

test: install
	$(PY) -m pytest tests -n 2 --dist loadfile

bench: install
	$(PY) benchmarks/run.py --output benchmarks/results/latest.json

clean:
	rm -rf $(VENV) reports build *.egg-info .pytest_cache
