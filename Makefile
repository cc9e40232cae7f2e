# Every target sets itself up from a clean clone: a .venv with torch installed first, then
# mlaudit in editable mode with its [fix] and [dev] extras (tests and the demo need the whole
# stack; the core install, `pip install .`, is the scanner alone, without torch).
# torch comes from wherever pip resolves torch==$(TORCH_VERSION): on an ordinary Linux box
# that is a multi-GB CUDA build, so pass the CPU index there:
#   make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
# Re-runs are fast: the stamp file is only rebuilt when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
DEMO := fixtures/build/sample_project
DEMO_OUT := fixtures/build/demo-fix
DEMO_HTML := fixtures/build/demo-scan.html

.PHONY: setup browser fixtures test demo bench realworld lint clean

$(STAMP): pyproject.toml tests/plugin_example/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION) \
		$(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[fix,dev]'
	@# the example plugin (docs/plugins.md), exercised end to end by tests/test_plugins.py
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e tests/plugin_example
	touch $(STAMP)

setup: $(STAMP)

# The browser tests (tests/test_browser.py) open the HTML reports in Debian's chromium, which
# is installed here when missing (non-interactive). Without root or apt-get the tests skip
# and say why; this target never fails the build.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	{ [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	echo "chromium is not installed and could not be installed: the browser tests will skip"

fixtures: setup
	$(PY) -m fixtures.generate

test: setup browser
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: fixtures
	@echo "== mlaudit scan $(DEMO)"
	-$(VENV)/bin/mlaudit scan $(DEMO) --isolated --output html=$(DEMO_HTML)
	@echo "(exit code 1 above means the gate failed on real findings, as it should for this project)"
	@echo "== mlaudit fix $(DEMO)/models/digits_mlp.pt (safe fixes + int8, verified)"
	@# latency=1.5: on this 26k-parameter MLP int8 and fp32 ONNX run within timer noise of each
	@# other (see docs/fix.md), so the demo allows 1.5x instead of flipping on a load spike
	$(VENV)/bin/mlaudit fix $(DEMO)/models/digits_mlp.pt --config $(DEMO)/models/digits_mlp.yaml --run-model \
		--eval-data fixtures/build/trained/mlp_eval.npz --apply strip-optimizer,strip-prefix,safetensors,onnx,int8 \
		--budget latency=1.5 --out $(DEMO_OUT) --force
	@echo "== HTML reports (open in any browser; no network needed)"
	@echo "  scan: $(abspath $(DEMO_HTML))"
	@echo "  fix:  $(abspath $(DEMO_OUT))/fix-report.html"

bench: fixtures browser
	# picklescan and pre-commit are only benchmark baselines/tools (bench_pickle_scan,
	# bench_light); never dependencies of mlaudit
	-$(PY) -m pip install --quiet --disable-pip-version-check picklescan pre-commit
	$(PY) -m benchmarks

# Real material (../shared/realworld beside the checkout; skipped with a message when absent),
# scored against our own labels in benchmarks/realworld/*.yaml -> benchmarks/results/realworld.json
realworld: setup
	$(PY) -m benchmarks.realworld

lint: setup
	$(VENV)/bin/ruff check mlaudit tests fixtures benchmarks
	$(PY) -m tests.import_contract
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) fixtures/build benchmarks/results .pytest_cache
