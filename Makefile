# Two commands: `make demo` and `make test`. Both create (or reuse) .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOMEWORKS := hw1_cloze hw2_video_caption hw3_gan hw4_chatbot

.PHONY: demo test lint venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# 2.13.0: the CPU wheel this project is tested with; plain `torch` would download a CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

demo: $(STAMP)
	@set -e; for hw in $(HOMEWORKS); do \
	  if [ -f $$hw/demo.py ]; then echo "== $$hw"; $(BIN)/python -m $$hw.demo; fi; \
	done; echo "== demo outputs are under demo/"

clean:
	rm -rf demo runs .cache
