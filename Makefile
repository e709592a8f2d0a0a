# tracewire developer / CI entry points.
#   make install        one virtualenv ($(VENV)) with every framework, pinned by constraints.txt
#   make test           pytest, offline
#   make demo           run the examples (installs only what they need into $(VENV))
#   make lint           ruff + mypy + lint-imports (the architecture rules in pyproject.toml)
#   make extras-check   each integration extra resolved unconstrained, range-checked and imported
#   make bench          every benchmarks/*.py
#   make docs           the documentation site (build/site), warnings as errors

VENV ?= .venv
PY = $(VENV)/bin/python
UV = $(VENV)/bin/uv
PYTEST_ARGS ?=

# Keep every framework offline and quiet, each by its own switch (OTEL_SDK_DISABLED is not one:
# it would also turn off tracewire's otlp sink); exported so test, demo and bench all get them.
export LITELLM_LOCAL_MODEL_COST_MAP = True
export CREWAI_DISABLE_TELEMETRY = true
export CREWAI_TRACING_ENABLED = false
export CREWAI_DISABLE_VERSION_CHECK = true
export ANONYMIZED_TELEMETRY = False
export DO_NOT_TRACK = 1
export HF_HUB_OFFLINE = 1

.PHONY: install test demo lint bench docs clean distclean extras-check

# What the examples import: the frameworks and the CLI, none of the dev tools.
DEMO_EXTRAS = cli,langchain,litellm,crewai,vertex,llamaindex,openai,anthropic

# `$(call venv_install,EXTRAS)`: install the checkout editable with EXTRAS into $(VENV), pinned.
# --compile-bytecode: imports of litellm/crewai/llama-index are slow, and with
# PYTHONDONTWRITEBYTECODE set (as on these machines) nothing would ever be cached.
define venv_install
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt uv
	$(UV) pip install --python $(PY) --compile-bytecode -c constraints.txt -e '.[$(1)]' \
	  || $(PY) -m pip install -c constraints.txt -e '.[$(1)]'
endef

# The full install holds the demo's set too: its stamp is renewed with it.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(call venv_install,dev)
	touch $@ $(VENV)/.demo-installed

# The demo's set only; a later `make install` / `make test` completes the same venv.
$(VENV)/.demo-installed: pyproject.toml constraints.txt
	$(call venv_install,$(DEMO_EXTRAS))
	touch $@

install: $(VENV)/.installed

# Arize Phoenix, the real OTLP receiver of tests/otel, conflicts with our pins: own venv, locked.
phoenix-venv: install
	$(PY) tests/otel/phoenix_venv.py

# The collector suite runs against a real PostgreSQL too: without TRACEWIRE_TEST_PG_DSN, start
# (or reuse) the loopback one .ci/pg-start.sh manages (it installs Debian's postgresql if missing).
test: install phoenix-venv
	@if [ -z "$$TRACEWIRE_TEST_PG_DSN" ]; then eval "$$(bash .ci/pg-start.sh | tail -1)"; fi; \
	echo "$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)"; \
	$(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: $(VENV)/.demo-installed
	$(PY) examples/quickstart.py
	$(VENV)/bin/tracewire show --last
	$(PY) examples/langchain_agent.py
	$(PY) examples/vertex_agent.py
	$(PY) examples/llamaindex_rag.py
	$(PY) examples/litellm_calls.py
	$(PY) examples/crewai_crew.py
	$(PY) examples/openai_chat.py
	$(PY) examples/anthropic_chat.py
	$(PY) examples/experiment.py
	@echo
	@echo "The traces are in $$($(PY) -c 'import os; from tracewire.read.local import default_db; print(os.path.abspath(default_db()))')"
	@echo "Next:"
	@echo "  $(VENV)/bin/tracewire ui                browse them in your web browser"
	@echo "  $(VENV)/bin/tracewire traces            the recorded traces, newest first"
	@echo "  $(VENV)/bin/tracewire show --last       the last one as a tree, with its content"
	@echo "  $(VENV)/bin/tracewire experiments list  the demo's experiment runs (then: experiments compare A B)"
	@echo "  README.md, docs/                      how to record your own agent"

lint: install
	$(PY) .ci/package_tree.py
	$(VENV)/bin/ruff check core integrations tests examples benchmarks
	$(VENV)/bin/mypy
	PYTHONPATH=build/pkg $(VENV)/bin/lint-imports --no-cache

# Unconstrained, as users install: each extra resolved from the registry, its framework versions
# checked against the integrations' declared ranges, installed in a venv of its own and imported.
extras-check: install
	$(PY) .ci/extras_check.py

bench: install
	@set -e; if [ -z "$$TRACEWIRE_TEST_PG_DSN" ]; then eval "$$(bash .ci/pg-start.sh | tail -1)"; fi; \
	for f in benchmarks/*.py; do \
	  [ -e "$$f" ] || continue; \
	  echo "== $$f"; $(PY) "$$f"; \
	done

docs: install
	$(PY) -m mkdocs build --strict

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
