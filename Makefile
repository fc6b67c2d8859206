# Every package folder with a pyproject.toml is picked up: adding packages/<name>/ needs no change here.
PYTHON     ?= python3
VENV       := .venv
BIN        := $(VENV)/bin
PACKAGES   := $(patsubst %/pyproject.toml,%,$(wildcard packages/*/pyproject.toml))
TEST_TOOLS := pytest pytest-timeout pytest-xdist hypothesis "httpx[http2]" flask django ruff build hatchling \
              inotify_simple websockets starlette fastapi h2
# Optional extras of the packages, installed so every code path is tested.
EXTRAS     := packages/core:asgi,uvloop,metrics
STAMP      := $(VENV)/.installed
# Plugins whose settings get their own generated page, docs/settings-<name>.md.
PLUGINS    := dirty http2
extras      = $(foreach e,$(EXTRAS),$(if $(filter $(1),$(firstword $(subst :, ,$(e)))),[$(word 2,$(subst :, ,$(e)))]))
HOST       ?= 127.0.0.1
PORT       ?= 8000

.PHONY: venv run test lint dist docs check-docs bench clean

venv: $(STAMP)

$(STAMP): $(wildcard packages/*/pyproject.toml) Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(foreach p,$(PACKAGES),-e '$(p)$(call extras,$(p))') $(TEST_TOOLS)
	touch $@

run: venv
	cd examples && ../$(BIN)/gunicorn -c gunicorn.conf.py -b $(HOST):$(PORT) app:app

test: venv
	sh tests/tools/ensure-tool.sh nginx nginx
	sh tests/tools/ensure-tool.sh h2load nghttp2-client
	$(BIN)/python -m pytest tests

lint: venv
	$(BIN)/ruff check packages tests

dist: venv
	rm -rf dist
	for p in $(PACKAGES); do $(BIN)/python -m build -q -o dist $$p || exit 1; done

docs: venv
	$(BIN)/python -m gunicorn.config.docs > docs/settings.md
	for p in $(PLUGINS); do $(BIN)/python -m gunicorn.config.docs --plugin $$p > docs/settings-$$p.md || exit 1; done

bench: venv
	PYTHON=/tmp/peers/bin/python OURS=$(CURDIR)/$(BIN)/python /tmp/peers/bin/python \
	  ../shared/bench/suite.py docs/bench-core-h1.txt --rounds 5

clean:
	rm -rf $(VENV) dist build .pytest_cache
