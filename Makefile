# forge-pack — `make demo` runs the main job end to end, `make test` runs the tests.
# Both install what they need (skopeo, docker-registry, PyYAML) when it is missing.

CARGO ?= cargo
# Two cores and plenty of memory: two rustc jobs at a time.
export CARGO_BUILD_JOBS ?= 2

.PHONY: demo test lint bench deps registry registry-stop

demo: deps
	scripts/demo.sh

test: deps
	$(CARGO) test --workspace --locked

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

bench: deps
	scripts/bench.sh

registry: deps
	scripts/registry.sh start

registry-stop:
	scripts/registry.sh stop

deps:
	@scripts/install-deps.sh
