# ser-hf: set-up, tests and the demo. Everything a fresh machine needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ser-hf-installed

.PHONY: setup ffmpeg browser test test-slow test-all demo demo-opensmile bench lint benchmarks docs package clean

setup: ffmpeg browser $(STAMP)

# The virtual environment is rebuilt whenever the package's declared dependencies change.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# torchcodec (and so datasets' Audio feature) decodes through FFmpeg's shared libraries.
ffmpeg:
	@if { ldconfig -p || /sbin/ldconfig -p; } 2>/dev/null | grep -q 'libavutil\.so'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing FFmpeg's shared libraries (Debian package ffmpeg)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null; \
	else \
		echo "ser-hf needs FFmpeg's shared libraries (libavutil, libavcodec, libavformat) and they are missing." >&2; \
		echo "Install them, then run make again: 'sudo apt-get install ffmpeg' (Debian/Ubuntu), 'brew install ffmpeg' (macOS)." >&2; \
		exit 1; \
	fi

# The browser tests (marker browser: the web app and its labelling page) drive headless Chromium through its driver,
# found on PATH (Debian: /usr/bin/chromium, /usr/bin/chromedriver). Installed where it can be (as root with apt-get);
# elsewhere the browser tests skip, which .ci/run (SER_HF_REQUIRE_BROWSER=1) turns into a failure.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing Chromium and its driver for the browser tests (Debian packages chromium chromium-driver)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		echo "Chromium and chromedriver are not installed, so the browser tests will skip: install them (Debian/Ubuntu:" \
			"'sudo apt-get install chromium chromium-driver') to run them." >&2; \
	fi

# One torch/OpenMP thread per process unless set: the tests' models are tiny, and on a 2-core machine two threads
# per process (with the subprocesses some tests start) made the suite several times slower.
# The test files run in parallel (pytest-xdist), one worker per logical CPU and at most 4: beyond that the largest
# file bounds the time. --dist loadfile keeps each file on one worker, so its module-scoped fixtures (trained runs,
# the local Hub, saved models) are built once. TEST_WORKERS=0 runs everything in one process, as plain `pytest` does.
# The 15 slowest tests are listed at the end, so that a test that grows past its share shows in every run.
# `make test` leaves out the tests marked slow (end to end: every docs page run, the benchmarks' quick modes, Hub
# round trips and model loading in fresh processes, ONNX exports, multi-process and interrupted training, the longest
# training comparisons), so that it stays within 5 minutes on 2 cores; `make test-slow` runs those, `make test-all` both. CI (.ci/run) runs both.
TEST_WORKERS ?= logical
PYTEST := OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadfile \
	--durations 15
test: setup
	$(PYTEST) -m "not slow"

test-slow: setup
	$(PYTEST) -m slow

test-all: setup
	$(PYTEST)

# The demo trains recipes/demo_whisper.yaml: Whisper tiny.en's pretrained encoder (embedded in the repository,
# pretrained/whisper-tiny.en-encoder), frozen, every clip of the RAVDESS sample the repository ships encoded once and a
# small head trained on its layers' statistics, speaker-independently (actors 01-05 train, 06 validates, 07-08 test);
# it prints its evaluation report and classifies a test actor's clip with ser-hf predict (the saved model loaded
# through pipeline("audio-classification")). About a minute on two CPU cores. The openSMILE demo is recipes/demo.yaml (make demo-opensmile).
DEMO_OUT ?= outputs/demo_whisper
DEMO_RECIPE ?= recipes/demo_whisper.yaml
DEMO_CLIP ?= data/ravdess_sample/Actor_08/03-01-05-02-01-01-08.flac
demo: setup
	$(VENV)/bin/ser-hf data summary --corpus ravdess --data-dir data/ravdess_sample
	rm -rf $(DEMO_OUT)
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VENV)/bin/ser-hf train $(DEMO_RECIPE) --output_dir $(DEMO_OUT) --disable_tqdm true
	@cat $(DEMO_OUT)/report.md
	$(VENV)/bin/ser-hf predict $(DEMO_OUT) $(DEMO_CLIP)

demo-opensmile:
	$(MAKE) demo DEMO_RECIPE=recipes/demo.yaml DEMO_OUT=outputs/demo

# The training-step and inference benchmarks' quick modes on the shipped sample, one torch thread (see BENCHMARKS.md):
# ser-hf's way against the straightforward one, side by side. Full modes read ../shared/data/ravdess_16k: drop --quick.
BENCH_ARGS ?= --quick
bench: setup
	$(PY) -m bench.train_step $(BENCH_ARGS) --threads 1
	$(PY) -m bench.inference $(BENCH_ARGS) --threads 1

lint: setup
	$(PY) -m ruff check ser_hf tests bench
	$(PY) -m ruff format --check ser_hf tests bench

# BENCHMARKS.md and README.md's headline table, rewritten from the benchmarks' JSON files under docs/results/
# (docs/results/make_benchmarks.py).
benchmarks: setup
	$(PY) docs/results/make_benchmarks.py

# The documentation site (mkdocs.yml): the pages of docs/, BENCHMARKS.md, and the API reference from the docstrings,
# into site/. --strict makes a broken link, a missing page or a docstring mkdocstrings cannot read an error; it fails
# first when BENCHMARKS.md or README.md's table is stale (differs from what make benchmarks writes).
docs: setup
	$(PY) docs/results/make_benchmarks.py --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The wheel and sdist as a release would publish them: built (python -m build), checked (twine check, metadata,
# extras, entry point), installed into a fresh virtual environment, and run (ser-hf --help, the demo). About a minute:
# not part of `make test`. DIST keeps a copy of what was built.
DIST ?= dist
package: setup
	rm -rf $(DIST)
	$(PY) -m build --outdir $(DIST)
	$(PY) -m twine check --strict $(DIST)/*
	SER_HF_PACKAGE_TESTS=1 SER_HF_PACKAGE_DIST=$(DIST) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest tests/test_packaging.py

clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache
