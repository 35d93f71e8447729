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

DEMO_REPORT ?= reports/demo-report.md

demo: install
	@echo "Example projects (examples/): breast-cancer MLP, credit scoring on a DataFrame, digit"
	@echo "images, a sequence model and the release gate, each checked for what its model learned."
	$(PY) -m pytest examples -p no:cacheprovider --kexplain-report=$(DEMO_REPORT) -rxX
	@echo
	@echo "The reviewed baseline of the release-gate example, as the kexplain command shows it:"
	$(VENV)/bin/kexplain show examples/release_gate/explanation_baselines/test_release_gate.test_release_gate.json --top 5
	@echo
	@echo "Report written to $(abspath $(DEMO_REPORT))"
	@echo "Next: read examples/README.md, then docs/getting-started.md."

test: install
	$(PY) -m pytest tests -n 2 --dist loadfile

bench: install
	$(PY) benchmarks/run.py --output benchmarks/results/latest.json

clean:
	rm -rf $(VENV) reports build *.egg-info .pytest_cache
