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

.PHONY: up install browser test provenance clean

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

# The main job: sign, verify, attest and serve the default model behind the gateway, with the audit log.
up: install
	$(MG) up --state-dir $(STATE) $(UP_ARGS)

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

test: install
	$(PY) -m ruff check .
	@set +e; $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(STATE) .pytest_cache .hypothesis
