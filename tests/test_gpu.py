"""Every op on a CUDA device against torch (float64 reference) and against fused_act's own
CPU kernels. Skipped where no GPU is present; run it on any machine that has one:

    python -m pytest tests/test_gpu.py
"""

from __future__ import annotations

import pytest
import torch
from conftest import BWD_TOL, CASE_IDS, CASES, DTYPES, FWD_TOL, assert_close, sample_input

import fused_act

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not fused_act.info()["cuda_kernels_built"], reason="built without CUDA kernels"),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cuda_matches_reference_and_cpu(case, dtype):
    name, params = case
    x = sample_input(name, params, dtype, "cpu", n=1 << 16 | 5)
    g = (torch.rand(x.shape) * 2 - 1).to(dtype)
    outs = {}
    for device in ("cpu", "cuda"):
        xs = x.to(device).requires_grad_()
        y = fused_act.activation(xs, name, **params)
        (dx,) = torch.autograd.grad(y, xs, g.to(device))
        outs[device] = (y.cpu(), dx.cpu())
    x64 = x.double().requires_grad_()
    r = fused_act.ACTIVATIONS[name].reference(x64, **params)
    (dr,) = torch.autograd.grad(r, x64, g.double())
    y, dx = outs["cuda"]
    assert_close(y, r.detach(), FWD_TOL[dtype], f"{name} cuda forward")
    assert_close(dx, dr, BWD_TOL[dtype], f"{name} cuda backward")
    assert_close(y, outs["cpu"][0], FWD_TOL[dtype], f"{name} cuda vs cpu forward")


@pytest.mark.parametrize("offset", [0, 1, 3])
def test_cuda_misaligned_and_tails(offset):
    base = torch.randn(1 << 12, device="cuda")
    for n in (1, 7, 8, 9, 1023, 4000):
        x = base[offset : offset + n]
        torch.testing.assert_close(fused_act.gelu(x), torch.nn.functional.gelu(x))


def test_cuda_stream_and_device_guard():
    s = torch.cuda.Stream()
    x = torch.randn(1 << 20, device="cuda")
    with torch.cuda.stream(s):
        y = fused_act.silu(x)
    s.synchronize()
    torch.testing.assert_close(y, torch.nn.functional.silu(x))
    if torch.cuda.device_count() > 1:
        x1 = torch.randn(1000, device="cuda:1")
        torch.testing.assert_close(fused_act.tanh(x1), x1.tanh())


def test_cuda_gradgradcheck_and_compile():
    x = torch.randn(16, dtype=torch.float64, device="cuda", requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda t: fused_act.mish(t), (x,))
    f = torch.compile(lambda t: fused_act.leaky_tanh(t, a=0.2), fullgraph=True)
    torch.testing.assert_close(f(x), torch.where(x >= 0, x.tanh(), 0.2 * x.tanh()))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ["relu", "gelu", "silu", "sigmoid", "elu"])
def test_cuda_fusions_match_cpu(name, dtype):
    """bias_act (both bias layouts, with the bias gradient), glu (both gates) and gated on CUDA
    against the same ops on CPU, whose results tests/test_fusions.py checks against torch."""
    torch.manual_seed(0)
    # (function, inputs, terms summed into each input's gradient: 1 elementwise, numel / C for a bias)
    cases = [
        (lambda x, b: fused_act.bias_act(x, b, name, dim=1), [torch.randn(64, 96), torch.randn(96)], [1, 64]),
        (lambda x, b: fused_act.bias_act(x, b, name, dim=1), [torch.randn(4, 24, 9, 9), torch.randn(24)], [1, 324]),
        (lambda x: fused_act.glu(x, name, gate="first"), [torch.randn(33, 2 * 40)], [1]),
        (lambda x: fused_act.glu(x, name, dim=1), [torch.randn(5, 6, 7)], [1]),
        (lambda a, u: fused_act.gated(a, u, name), [torch.randn(1000), torch.randn(1000)], [1, 1]),
    ]
    for fn, inputs, terms in cases:
        results = {}
        for device in ("cpu", "cuda"):
            ins = [t.to(dtype).to(device).requires_grad_() for t in inputs]
            y = fn(*ins)
            grads = torch.autograd.grad(y, ins, torch.ones_like(y))
            results[device] = [y.cpu(), *(g.cpu() for g in grads)]
        # Both sides are within the CPU tests' tolerances of float64 (tests/test_fusions.py), so
        # they agree within twice those; a bias gradient sums `terms` such elements.
        (y_cuda, *g_cuda), (y_cpu, *g_cpu) = results["cuda"], results["cpu"]
        atol, rtol = FWD_TOL[dtype]
        assert_close(y_cuda, y_cpu.double(), (2 * atol, 2 * rtol), f"{name} {dtype} fused forward")
        atol, rtol = BWD_TOL[dtype]
        for k, (a, b, n) in enumerate(zip(g_cuda, g_cpu, terms)):
            assert_close(a, b.double(), (2 * atol * n, 4 * rtol), f"{name} {dtype} fused gradient {k}")
