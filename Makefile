# meltemi: the two commands of the README are `make run` and `make test`.
VENV   := .venv
PY     := $(VENV)/bin/python
MESON  := $(VENV)/bin/meson
CTEST_BUILD := build/ctest
C_SOURCES := $(wildcard src/core/*.h src/core/*/*.c src/core/*/*.h src/python/*.c src/python/*.h tests/c/*.c tests/c/*.h tests/fuzz/*.c) $(wildcard src/loadgen/*.c)

.PHONY: all bootstrap run test test-c test-py test-ft test-gil test-sanitized test-wheel test-deploy test-scale ws-conformance autobahn wheel fuzz soak soak-sanitized bench bench-quick lint format docs clean

all: bootstrap

bootstrap:
	@scripts/bootstrap

# The demo Django project on SQLite, served by meltemi on 127.0.0.1:8000.
run: bootstrap
	@scripts/run-demo

test: bootstrap test-c test-py

# C unit tests, one executable per core file, under ASan and UBSan.
test-c: bootstrap
	@$(MESON) setup $(CTEST_BUILD) -Dctests=true -Dbuildtype=debug -Db_sanitize=address,undefined \
		-Dc_args=-fno-sanitize-recover=all --reconfigure
	@$(MESON) test -C $(CTEST_BUILD) --print-errorlogs

# pytest against real server processes on free ports.
test-py: bootstrap
	@$(PY) -m pytest -q $(PYTEST_ARGS)

# pytest on free-threaded CPython (--disable-gil), built once from Debian's source
# package by scripts/build-python into build/python-ft, with its venv .venv-ft
# (about 3 minutes cold on 2 cores; docs/install.md).
test-ft: bootstrap
	@scripts/build-python ft
	@.venv-ft/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# The async suites on CPython 3.12+ with the GIL, what most users run (the host's
# is 3.11; the ASGI runtime starts requests as eager tasks from 3.12 on): the same
# source and short build as test-ft without --disable-gil, by scripts/build-python
# into build/python-gil, with its venv .venv-gil (about 5 minutes cold on 2 cores,
# tests included; docs/install.md). GIL_TESTS=tests/py runs the whole suite.
GIL_TESTS ?= $(addprefix tests/py/,test_asgi.py test_asgi_frameworks.py test_asgi_trailers.py \
	test_asgi_websocket.py test_websocket_object.py test_ws_options.py test_ws_conformance.py \
	test_channels.py test_api.py test_api_async.py test_api_server.py)
test-gil: bootstrap
	@scripts/build-python gil
	@.venv-gil/bin/python -VV
	@.venv-gil/bin/python -m pytest -q -p no:cacheprovider $(GIL_TESTS) $(PYTEST_ARGS)

# pytest against a build of the extension with ASan and UBSan (build/sanitize/).
test-sanitized: bootstrap
	@scripts/test-sanitized $(PYTEST_ARGS)

# The sdist and a manylinux wheel (auditwheel repair, bundling libllhttp, libzstd and
# libbrotli) in dist/, the wheel built from the sdist: docs/install.md.
wheel: bootstrap
	@scripts/build-wheel

# The wheel installed into a clean venv in a Debian 12 root without those libraries
# (debootstrap under build/wheel-root; needs root), serving the demo project. Not
# part of `make test` (root, a few minutes cold); .ci/run calls it.
test-wheel: wheel
	@$(PY) -m pytest -q -s -p no:cacheprovider tests/wheel $(PYTEST_ARGS)

# docs/deployment.md's setups run: PostgreSQL, Redis, two meltemi instances of
# examples/deployment/mysite behind nginx, under load through a reload and a kill
# (tests/deploy; 30 to 55 s, so not part of `make test`; .ci/run calls it).
test-deploy: bootstrap
	@$(PY) -m pytest -q -s -p no:cacheprovider tests/deploy $(PYTEST_ARGS)

# 10,000 idle WebSockets, SSE streams and long polls on one ASGI worker (make test opens 2,000).
SCALE_CONNECTIONS ?= 10000
test-scale: bootstrap
	@MELTEMI_SCALE_CONNECTIONS=$(SCALE_CONNECTIONS) $(PY) -m pytest -q -s tests/py/test_asgi_scale.py

# The written WebSocket conformance suite; rewrites its table in docs/reliability.md.
ws-conformance: bootstrap
	@$(PY) scripts/ws_conformance.py

# Autobahn|Testsuite's fuzzingclient (Python 2.7, in a Debian 11 root under build/; needs root)
# against the ASGI echo app; rewrites its table in docs/reliability.md. Bounded by AUTOBAHN_TIMEOUT.
AUTOBAHN_TIMEOUT ?= 1500
autobahn: bootstrap
	@$(PY) scripts/autobahn.py --timeout $(AUTOBAHN_TIMEOUT)

# libFuzzer drivers of tests/fuzz/ under ASan and UBSan, FUZZ_SECONDS each (clang from Debian).
FUZZ_SECONDS ?= 60
fuzz: bootstrap
	@tests/fuzz/run $(FUZZ_SECONDS)

# About a million requests of a mixed load; fails on errors or on growth of RSS or descriptors.
SOAK_REQUESTS ?= 1000000
soak: bootstrap
	@mkdir -p build
	@$(PY) tests/soak/soak.py --requests $(SOAK_REQUESTS) --json build/soak.json

# A shorter soak against the ASan+UBSan build (instrumented code is slower; RSS includes ASan's own).
soak-sanitized: bootstrap
	@mkdir -p build
	@scripts/test-sanitized --soak --requests 200000 --json build/soak-sanitized.json

# The side-by-side benchmark (not part of `make test`): meltemi and its peers in a
# Debian 13 root under build/ (debootstrap; needs root). `make bench-quick` for a
# short run; `python -m bench --help` for the options. Writes bench/results/
# and bench/RESULTS.md.
BENCH_ARGS ?=
bench: bootstrap
	@$(PY) -m bench $(BENCH_ARGS)

bench-quick: bootstrap
	@$(PY) -m bench --quick $(BENCH_ARGS)

lint: bootstrap
	clang-format --dry-run --Werror $(C_SOURCES)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: bootstrap
	clang-format -i $(C_SOURCES)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Generated documentation (docs/config.md comes from meltemi/config.py).
docs: bootstrap
	$(PY) scripts/gen_config_docs.py

clean:
	rm -rf build dist
