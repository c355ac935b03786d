# rotbench: `make demo` and `make test` are the two commands a new machine needs.
# Each installs what is missing: libtorch 2.13.0 (slim CPU set from PyPI wheels,
# cached outside the repo) is fetched by scripts/setup-libtorch.sh on first use.

SHELL := /bin/bash
CARGO ?= cargo
DEMO_ANGLES ?= 0:360:15

.PHONY: setup build test demo bench exactness fixtures help

help:
	@echo "make demo   - sweep the bundled model over MNIST and write reports/demo/"
	@echo "make test   - run the whole test suite"
	@echo "make build  - release binary at target/release/rotbench"

# Point .libtorch (what .cargo/config.toml hands torch-sys) at the cached libtorch.
setup:
	@dir="$$(bash scripts/setup-libtorch.sh)" || exit 2; \
	 if [ "$$(readlink .libtorch 2>/dev/null)" != "$$dir" ]; then ln -sfn "$$dir" .libtorch; fi

build: setup
	$(CARGO) build --release --locked

test: setup
	$(CARGO) test --release --locked

demo: build
	target/release/rotbench sweep --model models/mnist-cnn.pt --data datasets/mnist \
	  --angles $(DEMO_ANGLES) --out reports/demo

# Optimised vs exact inference on the full test set at every demo angle (slow).
exactness: setup
	$(CARGO) test --release --locked --test exactness -- --ignored --nocapture

# rotbench vs the hand-written PyTorch peer and the forward-pass floor (needs the venv).
bench: build
	"$$(bash scripts/setup-venv.sh)/bin/python" bench/run.py

# Python venv (torch, torchvision, scikit-learn) for fixtures, training and benchmarks.
fixtures:
	"$$(bash scripts/setup-venv.sh)/bin/python" tests/fixtures/make_fixtures.py
