# Set-up and the project's main commands. Each target creates what it needs.
#   make demo   venv + build + the kernel check and the main job (train e1, one epoch)
#   make test   venv + build + the test suite
# FUSED_ACT_CUDA=1|0 forces the CUDA kernels on or off (default: on when torch has CUDA and nvcc
# is found); TORCH_CUDA_ARCH_LIST picks GPU architectures (see setup.py).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
export MAX_JOBS ?= 2

.PHONY: venv install demo test test-fast bench clean

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

clean:
	rm -rf build fused_act/*.so *.egg-info
