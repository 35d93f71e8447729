# Two commands for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Keep TensorFlow's start-up chatter out of test output.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export KERAS_BACKEND ?= tensorflow
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench install clean system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when the project's dependencies change.
$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

install: $(VENV)/.installed

DEMO_REPORT ?= reports/demo-report.html

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

# Debian's chromium (the report's browser test) and graphviz (plot_model's model diagrams).
# Best effort: without root or apt-get the tests that need them skip and say why.
system-deps:
	@if command -v chromium >/dev/null 2>&1 && command -v dot >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz >/dev/null) \
		|| echo "could not install chromium and graphviz; the browser test will skip"; \
	else echo "chromium and graphviz not installed (needs root and apt-get); the browser test will skip"; fi

# The linter and the strict type check of the package (configured in pyproject.toml).
lint: install
	$(PY) -m ruff check pytest_kexplain
	$(PY) -m mypy

test: install system-deps lint
	$(PY) -m pytest tests -n 2 --dist loadfile

bench: install
	$(PY) benchmarks/run.py --output benchmarks/results/latest.json

clean:
	rm -rf $(VENV) reports build *.egg-info .pytest_cache
