# The two set-up commands of the README. Each bootstraps what it needs on a fresh machine with
# nothing but Python 3.11+: uv in .tools/, the project in .venv/ from the committed uv.lock.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# Debian packages the test suite drives (installed when missing; root on CI machines).
APT_PACKAGES ?= prometheus openssl

export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint bench bench-instrument bench-metrics

demo: $(VENV)/.synced
	$(BIN)/python -m examples.instrumented_app

test: $(VENV)/.synced apt-packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy src
	$(BIN)/pytest

bench: bench-instrument bench-metrics

bench-instrument: $(VENV)/.synced
	@$(MAKE) --no-print-directory apt-packages APT_PACKAGES="wrk"
	$(BIN)/python benchmarks/instrument_overhead.py

# opsbook's metrics engine next to a real Prometheus (about 15 minutes, 8 GB of scratch data).
bench-metrics: $(VENV)/.synced apt-packages
	$(BIN)/python benchmarks/metrics.py

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python "$$(command -v $(PYTHON))"
	@touch $@

.PHONY: apt-packages
apt-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq $$missing; fi; \
	fi
