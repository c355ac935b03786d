# rotbench: `make demo` and `make test` are the two commands a new machine needs.
# Each installs what is missing: libtorch (the version in Cargo.toml; a slim CPU set from PyPI wheels,
# cached outside the repo) is fetched by scripts/setup-libtorch.sh on first use.

SHELL := /bin/bash
CARGO ?= cargo
DEMO_ANGLES ?= 0:360:5
DEMO_MODELS ?= models/mnist-cnn.pt models/mnist-cnn-aug.pt models/mnist-p4cnn.pt
# Extra sweep flags, e.g. `make demo DEMO_FLAGS=--no-cache` to time a run from scratch.
DEMO_FLAGS ?=

.PHONY: setup build test demo screenshot bench exactness fixtures help

help:
	@echo "make demo   - sweep the three bundled models over MNIST and write reports/demo/"
	@echo "make test   - run the whole test suite"
	@echo "make build  - release binary at target/release/rotbench"

# Point .libtorch (what .cargo/config.toml hands torch-sys) at the cached libtorch.
setup:
	@dir="$$(bash scripts/setup-libtorch.sh)" || exit 2; \
	 if [ "$$(readlink .libtorch 2>/dev/null)" != "$$dir" ]; then ln -sfn "$$dir" .libtorch; fi

build: setup
	$(CARGO) build --release --locked

test: setup
	$(CARGO) test --release --locked --workspace

# The three bundled models on the full MNIST test set (predictions.csv is written
# but not committed: reports/demo/ in git stays small).
demo: build
	target/release/rotbench sweep $(foreach m,$(DEMO_MODELS),--model $(m)) --data datasets/mnist \
	  --angles $(DEMO_ANGLES) --out reports/demo $(DEMO_FLAGS)

# Screenshot of reports/demo/index.html in headless Chromium (docs/report-screenshot.png);
# fails when the page logs a warning or an error, or the summary table scrolls sideways.
screenshot:
	bash scripts/screenshot.sh reports/demo/index.html docs/report-screenshot.png

# Optimised vs exact inference on the full test set at every demo angle (slow);
# on success it records the models it passed on in models/exactness.sha256, and
# `make test` then skips the full check until models/ changes.
exactness: setup
	ROTBENCH_RECORD_EXACTNESS=1 $(CARGO) test --release --locked --test exactness -- --ignored --nocapture

# rotbench vs the hand-written PyTorch peer and the forward-pass floor (needs the venv).
bench: build
	"$$(bash scripts/setup-venv.sh)/bin/python" bench/run.py

# Python venv (torch, torchvision, scikit-learn) for fixtures, training and benchmarks.
fixtures:
	"$$(bash scripts/setup-venv.sh)/bin/python" tests/fixtures/make_fixtures.py
