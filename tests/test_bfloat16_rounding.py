"""bfloat16's two CPU roundings agree: the AVX512_BF16 kernels (one vcvtne2ps2bf16 per 32 values,
csrc/cpu/storage.h) against the AVX512 kernels' integer sequence (ATen's convert_from_float),
forced with FUSED_ACT_NATIVE_BF16=0 in a fresh process. Both round to nearest even; the
instruction flushes results below FLT_MIN to zero. Accuracy against float64 is
test_activations.py's, which on such a CPU runs the AVX512_BF16 kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import fused_act

ROOT = Path(__file__).resolve().parents[1]

# Every path that rounds to bfloat16 on the CPU: the elementwise loop (activations, bias_act,
# gated), the mask loop, softmax's vector body. Inputs reach the range where outputs and
# gradients underflow (sigmoid(-100), exp's subnormals) and overflow.
SCRIPT = r"""
import sys, torch, fused_act
torch.manual_seed(0)
x = torch.cat([torch.randn(4093) * 4, torch.linspace(-120, 120, 2001)]).to(torch.bfloat16)
g = torch.randn_like(x)
out = {}
for name in fused_act.ACTIVATIONS:
    xs = x.clone().requires_grad_()
    y = fused_act.activation(xs, name)
    (dx,) = torch.autograd.grad(y, xs, g)
    out[name] = (y, dx)
xs = x.clone().requires_grad_()
y = fused_act.relu(xs, memory="mask")
out["relu mask"] = (y, torch.autograd.grad(y, xs, g)[0])
x2 = x[:6000].reshape(60, 100).clone().requires_grad_()
b = torch.randn(100).to(torch.bfloat16)
y = fused_act.bias_act(x2, b, "gelu", dim=-1)
out["bias_act gelu"] = (y, torch.autograd.grad(y, x2, g[:6000].reshape(60, 100))[0])
y = fused_act.swiglu(x2)
out["swiglu"] = (y, torch.autograd.grad(y, x2, g[:3000].reshape(60, 50))[0])
for f in (fused_act.softmax, fused_act.log_softmax):
    y = f(x2, -1)
    out[f.__name__] = (y, torch.autograd.grad(y, x2, g[:6000].reshape(60, 100))[0])
torch.save(out, sys.argv[1])
print(fused_act.info()["cpu_isa_bfloat16"])
"""


def _run(env_native: str | None, path: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != "FUSED_ACT_NATIVE_BF16"}
    if env_native is not None:
        env["FUSED_ACT_NATIVE_BF16"] = env_native
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out.stdout.split()[0]


def test_native_and_integer_rounding_agree(tmp_path):
    if fused_act.info()["cpu_isa_bfloat16"] != "AVX512_BF16":
        pytest.skip("bfloat16 runs the AVX512_BF16 kernels only on AVX-512 CPUs with avx512_bf16")
    assert _run(None, tmp_path / "native.pt") == "AVX512_BF16"
    assert _run("0", tmp_path / "integer.pt") == "AVX512"
    native = torch.load(tmp_path / "native.pt")
    integer = torch.load(tmp_path / "integer.pt")
    assert native.keys() == integer.keys()
    tiny = torch.finfo(torch.float32).tiny
    # Equal to the bit, but for the flush: results under FLT_MIN, and gradients computed from a
    # flushed saved output (sigmoid's g y (1 - y) with y = 0 instead of a subnormal), which
    # differ by at most |g| FLT_MIN (|g| < 16 here).
    flushes = 0
    for key in native:
        for a, b in zip(native[key], integer[key]):
            torch.testing.assert_close(a.float(), b.float(), rtol=0, atol=16 * tiny, equal_nan=True, msg=key)
            flushes += int(((b.float().abs() < tiny) & (b != 0) & (a == 0)).sum())
    # the inputs do reach bfloat16's subnormals, where the two roundings differ
    assert flushes > 0
