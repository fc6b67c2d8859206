# Every package folder with a pyproject.toml is picked up: adding packages/<name>/ needs no change here.
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
PACKAGES   := $(patsubst %/pyproject.toml,%,$(wildcard packages/*/pyproject.toml))
TEST_TOOLS := pytest pytest-timeout pytest-xdist hypothesis "httpx[http2]" flask django ruff build hatchling \
              inotify_simple websockets starlette fastapi h2 uvicorn PasteDeploy \
              mypy msgpack-types types-gevent
# Installed with --no-deps: uvicorn-worker requires the classic gunicorn distribution, which
# would overwrite gunicorn-core's files (see docs/migrating.md); we test it on our arbiter.
NODEPS_TOOLS := uvicorn-worker
# Optional extras of the packages, installed so every code path is tested.
EXTRAS     := packages/core:asgi,uvloop,metrics,gevent packages/dirty:redis
STAMP      := $(VENV)/.installed
# Plugins whose settings get their own generated page, docs/settings-<name>.md.
PLUGINS    := dirty http2
extras      = $(strip $(foreach e,$(EXTRAS),$(if $(filter $(1),$(firstword $(subst :, ,$(e)))),[$(word 2,$(subst :, ,$(e)))])))
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv venv-core run test lint dist docs typed check-docs bench clean

venv: $(STAMP)

$(STAMP): $(wildcard packages/*/pyproject.toml) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(foreach p,$(PACKAGES),-e '$(p)$(call extras,$(p))') $(TEST_TOOLS)
	$(BIN)/python -m pip install -q --no-deps $(NODEPS_TOOLS)
	touch $@

# gunicorn-core with its extras and the test tools but no plugin: tests/integration/
# test_core_alone.py runs the core's tests there (CORE_VENV is a cache directory it picks).
CORE_VENV  ?= .venv-core
CORE_TOOLS := $(filter-out mypy msgpack-types,$(TEST_TOOLS))

venv-core: $(CORE_VENV)/.installed

$(CORE_VENV)/.installed: packages/core/pyproject.toml Makefile
	test -x $(CORE_VENV)/bin/python || $(PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/python -m pip install -q --upgrade pip
	$(CORE_VENV)/bin/python -m pip install -q -e 'packages/core$(call extras,packages/core)' $(CORE_TOOLS)
	$(CORE_VENV)/bin/python -m pip install -q --no-deps $(NODEPS_TOOLS)
	touch $@

run: venv
	cd examples && ../$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) app:app

# The whole test run starts with the linters (ruff, mypy --strict): CI runs `make test`.
test: venv lint
	sh tests/tools/ensure-tool.sh nginx nginx
	sh tests/tools/ensure-tool.sh h2load nghttp2-client
	sh tests/tools/ensure-tool.sh redis-server redis-server
	$(BIN)/python -m pytest tests

# mypy gets each package's src directory: `mypy -p gunicorn` would find only the core's half of
# the namespace. The settings are in the root pyproject.toml ([tool.mypy]).
SRC_DIRS   := $(foreach p,$(PACKAGES),$(p)/src)

lint: venv
	$(BIN)/ruff check packages tests
	$(BIN)/mypy $(SRC_DIRS)

dist: venv
	rm -rf dist
	for p in $(PACKAGES); do $(BIN)/python -m build -q -o dist $$p || exit 1; done

docs: typed
	$(BIN)/python -m gunicorn.config.docs > docs/settings.md
	for p in $(PLUGINS); do $(BIN)/python -m gunicorn.config.docs --plugin $$p > docs/settings-$$p.md || exit 1; done

# The typed settings views (cfg: CoreSettings, DirtySettings, ...) generated from the registry.
# Written through a temporary file: the generator imports the modules it regenerates.
typed: venv
	$(BIN)/python -m gunicorn.config.typed_gen > packages/core/src/gunicorn/config/typed.py.new
	mv packages/core/src/gunicorn/config/typed.py.new packages/core/src/gunicorn/config/typed.py
	for p in $(PLUGINS); do out=packages/$$p/src/gunicorn/$$p/typed_settings.py; \
	  $(BIN)/python -m gunicorn.config.typed_gen --plugin $$p > $$out.new && mv $$out.new $$out \
	  || { rm -f $$out.new; exit 1; }; done

# The peers (gunicorn 27.0.1, uvicorn) live in their own virtualenv; without it `make bench`
# says how to make one and measures ours alone.
PEERS      ?= /tmp/peers/bin/python
BENCH_SUITE ?= benchmarks/suites/core-h1.txt

bench: venv
	$(BIN)/python benchmarks/suite.py $(BENCH_SUITE) --rounds 5 --peers $(PEERS)

clean:
	rm -rf $(VENV) $(CORE_VENV) dist build .pytest_cache
