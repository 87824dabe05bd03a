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
@pytest.mark.skipif(
    _free_bytes() < 10 * 2**30 or os.environ.get("FUSED_ACT_SKIP_LARGE") == "1", reason="needs ~10 GB free memory"
)
def test_more_than_2_31_elements():
    # linspace in float32 then rounded: torch.linspace(..., dtype=float16) yields NaNs at 2^20 points.
    ramp = torch.linspace(-8, 8, 1 << 20).half()
    window = torch.linspace(-8, 8, 20).half()  # elements 2^31 - 16 .. 2^31 + 3
    tail = window.flip(0)  # the last 20: 2^31 + 17 .. N - 1
    x = torch.empty(N, dtype=torch.float16)
    x.fill_(-1.5)
    x[: 1 << 20] = ramp
    x[(1 << 31) - 16 : (1 << 31) + 4] = window
    x[-20:] = tail
    y = fused_act.relu6(x, inplace=True)  # in place: 4.3 GB instead of 8.6

    def expected(t):
        return t.float().clamp(0, 6).half()

    assert torch.equal(y[: 1 << 20], expected(ramp))
    assert torch.equal(y[(1 << 31) - 16 : (1 << 31) + 4], expected(window))
    assert torch.equal(y[-20:], expected(tail))
    assert torch.equal(y[(1 << 31) + 4 : -20], torch.zeros(13, dtype=torch.float16))
