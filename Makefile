# Two commands on a fresh machine: `make up` and `make test`. Everything else is a building block.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
MG := $(VENV)/bin/modelgate
STATE ?= .state
# The CPU wheel of torch, installed before the project so that pip never resolves a CUDA build on its own.
TORCH_SPEC ?= torch==2.13.0
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

PORT ?= 8000

.PHONY: up install browser test provenance serve clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(PIP) "$(TORCH_SPEC)"
	$(PIP) -e '.[test]'
	@touch $@

# The admin UI's browser tests need Debian's chromium (they skip, saying so, without it). As root with apt,
# it is installed here; otherwise: sudo apt-get install -y chromium chromium-driver. Playwright drives that
# binary; `playwright install` (a download) is never used.
browser:
	@if command -v chromium >/dev/null; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
		|| echo "warning: chromium could not be installed; the browser tests will skip" >&2; \
	else echo "note: no chromium; the admin UI's browser tests will skip (apt-get install chromium)" >&2; fi

install: $(VENV)/.installed browser

# Until the gateway exists, the main job is the verified default model, served by the built-in engine.
up: install provenance serve

provenance: install
	@mkdir -p $(STATE)
	@set -e; \
	model=$$($(MG) models fetch --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["path"])'); \
	echo "==> default model: $$model"; \
	$(MG) sbom "$$model" -o $(STATE)/model.cdx.json; \
	test -f $(STATE)/dev-signing.key.pem || $(MG) keygen -o $(STATE)/dev-signing.key.pem; \
	$(MG) sign "$$model" --sbom $(STATE)/model.cdx.json --key $(STATE)/dev-signing.key.pem -o $(STATE)/model.sigstore.json; \
	$(MG) verify "$$model" --bundle $(STATE)/model.sigstore.json --key $(STATE)/dev-signing.pub.pem --policy policies/dev.yaml; \
	echo; \
	echo "Done: fetched the default model, wrote its CycloneDX ML-BOM ($(STATE)/model.cdx.json),"; \
	echo "signed it with a development key ($(STATE)/dev-signing.key.pem) into $(STATE)/model.sigstore.json,"; \
	echo "and verified every file against that bundle under policies/dev.yaml."

# Serve the model that `provenance` signed, through the verified load, with a development API token.
serve: install
	@test -f $(STATE)/engine-token || (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(24))' > $(STATE)/engine-token)
	@set -e; \
	model=$$($(MG) models fetch --json | $(PY) -c 'import json,sys; print(json.load(sys.stdin)["path"])'); \
	token=$$(cat $(STATE)/engine-token); \
	echo; \
	echo "==> serving $$model on http://127.0.0.1:$(PORT)/v1 (token in $(STATE)/engine-token). Try:"; \
	echo "curl -s http://127.0.0.1:$(PORT)/v1/chat/completions -H 'Authorization: Bearer $$token' \\"; \
	echo "  -H 'Content-Type: application/json' \\"; \
	echo "  -d '{\"model\": \"$$(basename $$model)\", \"messages\": [{\"role\": \"user\", \"content\": \"What is the capital of France?\"}], \"temperature\": 0}'"; \
	echo; \
	MODELGATE_ENGINE_TOKEN=$$token exec $(MG) engine serve --model "$$model" --bundle $(STATE)/model.sigstore.json \
		--key $(STATE)/dev-signing.pub.pem --policy policies/dev.yaml --port $(PORT)

test: install
	$(PY) -m ruff check .
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache .hypothesis
