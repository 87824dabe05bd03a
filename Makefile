# Set-up and the project's main commands. Each target creates what it needs.
#   make demo   venv + build + the kernel check and the main job (train e1, one epoch)
#   make test   venv + build + the test suite
#   make lint   ruff (lint + format check) and clang-format check; make format rewrites
# FUSED_ACT_CUDA=1|0 forces the CUDA kernels on or off (default: on when torch has CUDA and nvcc
# is found); TORCH_CUDA_ARCH_LIST picks GPU architectures (see setup.py).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export MAX_JOBS ?= 2

.PHONY: venv install demo test lint format clean

$(VENV)/.requirements: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

venv: $(VENV)/.requirements

install: venv
	$(PY) -m pip install --quiet --no-build-isolation --no-deps -e .

# The kernels against torch (accuracy, speed), then the main job: E1 on the real MNIST, one
# epoch of each of the eight runs (a few minutes on 2 cores), report in runs/e1/report.md.
demo: install
	$(PY) -m fused_act.demo
	$(PY) -m train e1 --epochs 1

test: install
	$(PY) -m pytest -q

CXX_SOURCES = $(shell find csrc bench -name '*.h' -o -name '*.cuh' -o -name '*.cpp' -o -name '*.cu')

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/clang-format --dry-run --Werror $(CXX_SOURCES)

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .
	$(VENV)/bin/clang-format -i $(CXX_SOURCES)

clean:
	rm -rf build fused_act/*.so *.egg-info
