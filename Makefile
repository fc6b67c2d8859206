# Every package folder with a pyproject.toml is picked up: adding packages/<name>/ needs no change here.
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
PACKAGES   := $(patsubst %/pyproject.toml,%,$(wildcard packages/*/pyproject.toml))
TEST_TOOLS := pytest pytest-timeout pytest-xdist hypothesis "httpx[http2]" flask django ruff build hatchling \
              inotify_simple websockets starlette fastapi h2 uvicorn PasteDeploy
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

.PHONY: venv run test lint dist docs check-docs bench clean

venv: $(STAMP)

$(STAMP): $(wildcard packages/*/pyproject.toml) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(foreach p,$(PACKAGES),-e '$(p)$(call extras,$(p))') $(TEST_TOOLS)
	$(BIN)/python -m pip install -q --no-deps $(NODEPS_TOOLS)
	touch $@

run: venv
	cd examples && ../$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) app:app

test: venv
	sh tests/tools/ensure-tool.sh nginx nginx
	sh tests/tools/ensure-tool.sh h2load nghttp2-client
	sh tests/tools/ensure-tool.sh redis-server redis-server
	$(BIN)/python -m pytest tests

lint: venv
	$(BIN)/ruff check packages tests

dist: venv
	rm -rf dist
	for p in $(PACKAGES); do $(BIN)/python -m build -q -o dist $$p || exit 1; done

docs: venv
	$(BIN)/python -m gunicorn.config.docs > docs/settings.md
	for p in $(PLUGINS); do $(BIN)/python -m gunicorn.config.docs --plugin $$p > docs/settings-$$p.md || exit 1; done

# The peers (gunicorn 27.0.1, uvicorn) live in their own virtualenv; without it `make bench`
# says how to make one and measures ours alone.
PEERS      ?= /tmp/peers/bin/python
BENCH_SUITE ?= benchmarks/suites/core-h1.txt

bench: venv
	$(BIN)/python benchmarks/suite.py $(BENCH_SUITE) --rounds 5 --peers $(PEERS)

clean:
	rm -rf $(VENV) dist build .pytest_cache
