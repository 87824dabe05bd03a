"""pytest-benchmark entry points, for CI-style regression tracking over commits.

Every activation (from the registry) x forward / forward+backward x fused / eager, float32,
2^20 elements, one thread on CPU (see bench/guard.py for why one thread on a shared machine):

    pytest bench/test_pytest_benchmark.py --benchmark-autosave          # store a baseline
    pytest bench/test_pytest_benchmark.py --benchmark-compare \\
        --benchmark-compare-fail=min:30%                                  # fail on a regression

Not collected by the default ``pytest`` run (testpaths = tests); pytest-benchmark's own
statistics (min / median / IQR over rounds) and storage apply.
"""

from __future__ import annotations

import pytest
import torch

from bench.cases import Case
from bench.providers import Tensors, build
from fused_act.registry import ACTIVATIONS

SIZE = 1 << 20


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("provider", ["fused", "eager"])
@pytest.mark.parametrize("mode", ["fwd", "fwdbwd"])
@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_activation(benchmark, act, mode, provider):
    case = Case(act, "float32", SIZE, mode, "alloc", 1, "cpu", (provider,))
    t = Tensors(case)
    runner = build(provider, case, t).runner
    benchmark.group = f"{act}-{mode}"
    benchmark.extra_info.update(bytes=2 * SIZE * 4 if mode == "fwd" else 4 * SIZE * 4)
    benchmark.pedantic(runner.fn, rounds=20, iterations=1, warmup_rounds=2)
