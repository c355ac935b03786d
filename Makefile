# rotbench: `make demo` and `make test` are the two commands a new machine needs.
# Each installs what is missing: libtorch (the version in Cargo.toml; a slim CPU set from PyPI wheels,
# cached outside the repo) is fetched by scripts/setup-libtorch.sh on first use.

SHELL := /bin/bash
CARGO ?= cargo
DEMO_ANGLES ?= 0:360:5
DEMO_MODELS ?= models/mnist-cnn.pt models/mnist-cnn-aug.pt models/mnist-p4cnn.pt
# mdbook for `make book`, installed once from crates.io into rotbench's cache (not on PATH).
MDBOOK_VERSION ?= 0.5.4
TOOLS_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/rotbench/tools
MDBOOK := $(TOOLS_DIR)/mdbook-$(MDBOOK_VERSION)/bin/mdbook
# Extra sweep flags, e.g. `make demo DEMO_FLAGS=--no-cache` to time a run from scratch.
DEMO_FLAGS ?=

.PHONY: setup build wheel test-wheel test demo spatial screenshot bench exactness agreement fixtures fixtures-check recompute-check book docs-cli help

help:
	@echo "make demo   - sweep the three bundled models over MNIST and write reports/demo/"
	@echo "make spatial - Engstrom et al.'s spatial protocol (775-point grid, worst-of-10) on the bundled models into reports/spatial/"
	@echo "make test   - run the whole test suite"
	@echo "make build  - release binary at target/release/rotbench"
	@echo "make wheel  - dist/rotbench-*.whl: the binary, a launcher that runs it on the installed torch, the demo"
	@echo "make test-wheel - build the wheel, install it in fresh venvs (torch from PyPI, cached) and check it"
	@echo "make fixtures-check - regenerate every test fixture (pinned venv) and fail if one changed"
	@echo "make agreement - the .onnx and .pt2 exports against TorchScript on the full test set at 0:360:15"
	@echo "make recompute-check - after make demo: recompute per_angle.csv's calibration/stability columns from predictions.csv in Python"
	@echo "make book  - the documentation book (docs/, mdBook) into target/book/; installs mdbook $(MDBOOK_VERSION) once"
	@echo "make docs-cli - regenerate docs/cli.md and docs/rotbench.1 from the CLI's definitions (tests/cli_reference.rs checks them)"

# Point .libtorch (what .cargo/config.toml hands torch-sys) at the cached libtorch.
setup:
	@dir="$$(bash scripts/setup-libtorch.sh)" || exit 2; \
	 if [ "$$(readlink .libtorch 2>/dev/null)" != "$$dir" ]; then ln -sfn "$$dir" .libtorch; fi

build: setup
	$(CARGO) build --release --locked

# The wheel: the release binary, stripped, with a launcher that runs it on the libtorch
# of the torch installed beside it, and the bundled models and MNIST test set.
wheel: build
	@rm -f dist/rotbench-*.whl
	python3 scripts/wheel/build.py --binary target/release/rotbench --out dist

# Install the wheel into fresh venvs and check it (downloads torch once, ~2.7 GB, cached).
test-wheel: wheel
	bash scripts/test-wheel.sh dist/rotbench-*.whl

# The workspace's tests, then a build of every binary: that includes the fuzz
# targets (fuzz/, rotbench-core only), so they cannot rot between fuzzing runs.
test: setup
	$(CARGO) test --release --locked --workspace
	$(CARGO) build --release --locked --workspace

# The three bundled models on the full MNIST test set (predictions.csv is written
# but not committed: reports/demo/ in git stays small).
demo: build
	target/release/rotbench sweep $(foreach m,$(DEMO_MODELS),--model $(m)) --data datasets/mnist \
	  --angles $(DEMO_ANGLES) --out reports/demo $(DEMO_FLAGS)

# Engstrom et al.'s spatial protocol on the three bundled models (docs/spatial.md):
# the 775-point grid (±30° in 2° steps, ±3 px in 1.5 px steps) with early stop, and
# worst-of-10; writes reports/spatial/ (not committed).
SPATIAL_FLAGS ?= --angles=-30:31:2 --translate=-3:4:1.5px --grid-early-stop --worst-of 10 --seed 0
spatial: build
	target/release/rotbench sweep $(foreach m,$(DEMO_MODELS),--model $(m)) --data datasets/mnist \
	  $(SPATIAL_FLAGS) --out reports/spatial

# Screenshot of reports/demo/index.html in headless Chromium (docs/report-screenshot.png);
# fails when the page logs a warning or an error, or the summary table scrolls sideways.
screenshot:
	bash scripts/screenshot.sh reports/demo/index.html docs/report-screenshot.png

# Optimised vs exact inference on the full test set at every demo angle (slow);
# on success it records the models it passed on in models/exactness.sha256, and
# `make test` then skips the full check until models/ changes.
exactness: setup
	ROTBENCH_RECORD_EXACTNESS=1 $(CARGO) test --release --locked --test exactness -- --ignored --nocapture

# The bundled models' .onnx and .pt2 exports against TorchScript on the full test set at
# 0:360:15 (720,000 predictions per format; slow): every difference is printed.
agreement: setup
	$(CARGO) test --release --locked --test formats -- --ignored --nocapture

# rotbench vs the hand-written PyTorch peer and the forward-pass floor (needs the venv).
bench: build
	"$$(bash scripts/setup-venv.sh)/bin/python" bench/run.py

# Regenerate every committed fixture with the pinned venv (scripts/requirements-fixtures.txt),
# fetching what the generators read (MNIST raw IDX files). `make fixtures-check` then
# fails if any fixture changed or a new file appeared: the generators are deterministic.
fixtures:
	@py="$$(bash scripts/setup-venv.sh)/bin/python" && mnist="$$(bash scripts/fetch-mnist.sh)" && \
	 ROTBENCH_MNIST_RAW="$$mnist" "$$py" tests/fixtures/make_fixtures.py && \
	 "$$py" tests/fixtures/shapes/make_shapes.py && \
	 "$$py" tests/fixtures/models/make_models.py && \
	 "$$py" tests/fixtures/models/make_mislead.py && \
	 "$$py" tests/fixtures/models/make_wide.py && \
	 "$$py" tests/fixtures/models/make_tiny224.py && \
	 "$$py" tests/fixtures/models/make_onnx_fixtures.py && \
	 "$$py" tests/fixtures/models/make_output_kinds.py && \
	 "$$py" tests/fixtures/models/make_pt2_native.py && \
	 "$$py" tests/fixtures/make_references.py && \
	 "$$py" tests/fixtures/make_stability.py && \
	 "$$py" tests/fixtures/make_class_spaces.py && \
	 "$$py" tests/fixtures/make_jpeg224.py && \
	 "$$py" tests/fixtures/make_pipeline.py

# Recompute every calibration, stability and bootstrap column of the demo's per_angle.csv
# from its predictions.csv in Python (numpy, the venv) and fail on a difference above 1e-12.
# Run after `make demo` (predictions.csv is not committed).
recompute-check:
	"$$(bash scripts/setup-venv.sh)/bin/python" tests/fixtures/recompute_from_exports.py reports/demo

# The book: docs/ is the mdBook source (docs/book.toml, docs/SUMMARY.md), built into
# target/book/. mdbook is pinned and installed on first use with `cargo install --locked`
# (crates.io only); tests/docs_links.rs checks the links and that SUMMARY.md lists every page.
# The CLI reference and the man page, generated from the clap definitions (the same
# that print --help); tests/cli_reference.rs fails when the committed files differ.
docs-cli: build
	target/release/rotbench reference markdown > docs/cli.md
	target/release/rotbench reference man > docs/rotbench.1

book:
	@if [ ! -x "$(MDBOOK)" ]; then \
	   echo "make book: installing mdbook $(MDBOOK_VERSION) into $(TOOLS_DIR) (once)" >&2; \
	   $(CARGO) install mdbook --locked --version $(MDBOOK_VERSION) --root "$(TOOLS_DIR)/mdbook-$(MDBOOK_VERSION)" || exit 2; \
	 fi
	"$(MDBOOK)" build docs

fixtures-check: fixtures
	git diff --exit-code --stat -- tests/fixtures
	@new="$$(git status --porcelain --untracked-files=all -- tests/fixtures)"; \
	 if [ -n "$$new" ]; then echo "fixtures-check: files the generators wrote that git does not track:"; echo "$$new"; exit 1; fi
	@echo "fixtures-check: every fixture regenerated byte-identical"
