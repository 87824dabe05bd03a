"""Non-temporal ("streaming") stores of the CPU loop (csrc/cpu/vectorized_loop.h,
csrc/cpu/streaming.h): memory-bound launches (every op of a kMemoryBound functor, any backward
from the output) that move at least the L3 size into mapped pages store their full blocks past
the caches. Here every launch that may stream does
(threshold 1 byte, fresh pages too), counted by ``_C.cpu_streamed_launches()``, and the results
of every activation, dtype and instruction set are checked against torch in float64:
multi-threaded splits, masked tails, rows that start unaligned (bias_act over odd widths),
reglu's half-width output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ISAS, run_under_isa

import fused_act
from fused_act import _C

_SCRIPT = r"""
import torch, fused_act, sys
import torch.nn.functional as F
from fused_act import _C
from fused_act.registry import ACTIVATIONS
_C.set_cpu_streaming(1, True)  # every launch, fresh pages too
isa = fused_act.info()["cpu_isa"]
print(isa)
bad = []
bound = set(_C.memory_bound())
def check(what, a, b, tol, launches, streams):
    if not torch.allclose(a.double(), b.detach().double(), rtol=tol, atol=tol, equal_nan=True):
        bad.append((what, (a.double() - b.double()).abs().max().item()))
    # one launch per call, streamed where the op may stream, except by the baseline build (it
    # has no such stores)
    if launches != (1 if streams and isa != "DEFAULT" else 0):
        bad.append((what, "streamed launches", launches))
def count():
    return _C.cpu_streamed_launches()
torch.manual_seed(0)
for dtype, tol in [(torch.float32, 2e-5), (torch.float64, 1e-7), (torch.bfloat16, 2e-2), (torch.float16, 2e-3)]:
    for n in (1000, 65536 + 37):  # one thread with a tail; two threads, the second chunk's tail
        x = (torch.randn(n, dtype=torch.float64) * 4).to(dtype)
        g = torch.randn(n, dtype=torch.float64).to(dtype)
        for name, spec in ACTIVATIONS.items():
            if name == "identity":  # returns x: no launch
                continue
            xs = x.clone().requires_grad_()
            c0 = count()
            y = fused_act.activation(xs, name)
            c1 = count()
            (dx,) = torch.autograd.grad(y, xs, g)
            c2 = count()
            x64 = x.double().requires_grad_()
            r = spec.reference(x64, **spec.params)
            (dr,) = torch.autograd.grad(r, x64, g.double())
            # memory-bound functors stream every launch, the others their backward from y
            kernel, args = spec.kernel_args(spec.params)
            from_y = _C.saved_for(kernel, args) == "output"
            check((name, str(dtype), n, "fwd"), y, r, tol, c1 - c0, kernel in bound)
            check((name, str(dtype), n, "bwd"), dx, dr, tol * 4, c2 - c1, kernel in bound or from_y)
    # rows of 1001: most rows start at an address no vector store may stream to
    x = (torch.randn(67, 1001, dtype=torch.float64)).to(dtype)
    b = torch.randn(1001, dtype=torch.float64).to(dtype)
    c0 = count()
    y = fused_act.bias_act(x, b, "relu", dim=1)
    check(("bias_act", str(dtype)), y, torch.relu(x.double() + b.double()), tol, count() - c0, True)
    h = torch.randn(64, 2 * 515, dtype=torch.float64).to(dtype)
    c0 = count()
    y = fused_act.reglu(h, gate="first")
    r = torch.relu(h.double()[:, :515]) * h.double()[:, 515:]
    check(("reglu", str(dtype)), y, r, tol * 2, count() - c0, True)
print(bad)
sys.exit(1 if bad else 0)
"""


@pytest.mark.parametrize("isa", ISAS)
def test_streamed_results_match_float64_reference(isa):
    out = run_under_isa(isa, _SCRIPT)
    assert out.split()[1] == "[]", out


def _sysfs_l3_bytes() -> int:
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        if (index / "level").read_text().strip() == "3" and (index / "type").read_text().strip() == "Unified":
            size = (index / "size").read_text().strip()
            return int(size[:-1]) * {"K": 1 << 10, "M": 1 << 20}[size[-1]] if size[-1] in "KM" else int(size)
    return 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the default comes from Linux sysfs")
def test_threshold_defaults_to_the_l3_size():
    env = {k: v for k, v in os.environ.items() if k != "FUSED_ACT_STREAM_BYTES"}
    code = "import fused_act; print(fused_act.info()['cpu_stream_min_bytes'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert int(out.stdout) == _sysfs_l3_bytes()


def _threshold_with(value: str) -> subprocess.CompletedProcess:
    code = "import fused_act; print(fused_act.info()['cpu_stream_min_bytes'])"
    env = {**os.environ, "FUSED_ACT_STREAM_BYTES": value}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)


def test_threshold_from_the_environment():
    assert int(_threshold_with("12345").stdout) == 12345
    assert int(_threshold_with("0").stdout) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the default comes from Linux sysfs")
@pytest.mark.parametrize("value", ["-5", "32M", ""])
def test_bad_threshold_in_the_environment_warns_and_keeps_the_default(value):
    out = _threshold_with(value)
    assert "FUSED_ACT_STREAM_BYTES must be a whole number" in out.stderr
    assert int(out.stdout) == _sysfs_l3_bytes()


def test_policy_can_be_set_and_checks_its_argument():
    before = _C.set_cpu_streaming(0)
    try:
        assert _C.cpu_streaming() == (0, False)
        assert fused_act.info()["cpu_stream_min_bytes"] == 0
        launches = _C.cpu_streamed_launches()
        fused_act.relu(torch.randn(1 << 16))
        assert _C.cpu_streamed_launches() == launches
    finally:
        assert _C.set_cpu_streaming(*before) == (0, False)
    with pytest.raises(RuntimeError, match="threshold must be >= 0"):
        _C.set_cpu_streaming(-1)
