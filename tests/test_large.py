"""Tensors past 2^31 elements (64-bit indexing through the whole path). Needs ~8.6 GB of free
memory; skipped when the machine has less."""

from __future__ import annotations

import os

import pytest
import torch

import fused_act

N = (1 << 31) + 37


def _free_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
@pytest.mark.skipif(_free_bytes() < 10 * 2**30 or os.environ.get("FUSED_ACT_SKIP_LARGE") == "1",
                    reason="needs ~10 GB free memory")
def test_more_than_2_31_elements():
    x = torch.empty(N, dtype=torch.float16)
    x[: 1 << 20] = torch.linspace(-4, 4, 1 << 20, dtype=torch.float16)
    x[-(1 << 20):] = torch.linspace(-4, 4, 1 << 20, dtype=torch.float16)
    x[(1 << 20): -(1 << 20)] = -1.5
    y = fused_act.relu6(x, inplace=True)  # in place: 4.3 GB instead of 8.6
    expected = torch.nn.functional.relu6(torch.linspace(-4, 4, 1 << 20, dtype=torch.float16))
    assert torch.equal(y[: 1 << 20], expected)
    assert torch.equal(y[-(1 << 20):], expected)  # the elements past index 2^31
    assert torch.equal(y[(1 << 31) - 5: (1 << 31) + 5], torch.zeros(10, dtype=torch.float16))
