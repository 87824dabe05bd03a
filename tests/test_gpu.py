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


def test_cuda_ops_run_on_the_current_stream():
    """Every op family on a side stream, reading a tensor that only that stream has finished
    writing (after a long sleep): a kernel launched on another stream would read the NaN fill."""
    x = torch.randn(1 << 20, device="cuda")
    b = torch.randn(256, device="cuda")
    ops = {
        "activation": lambda t: fused_act.silu(t),
        "in place": lambda t: fused_act.tanh(t.clone(), inplace=True),
        "mask": lambda t: fused_act.relu(t, memory="mask"),
        "bias_act": lambda t: fused_act.bias_act(t.view(-1, 256), b, "gelu"),
        "glu": lambda t: fused_act.swiglu(t.view(-1, 256)),
        "softmax": lambda t: fused_act.softmax(t.view(-1, 4096), -1),
        "softmax, split rows": lambda t: fused_act.log_softmax(t.view(1, -1), -1),
        "softmax, columns": lambda t: fused_act.softmax(t.view(-1, 8), 0),
    }
    s = torch.cuda.Stream()
    for what, op in ops.items():
        expected = op(x)
        staged = torch.full_like(x, float("nan"))
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            torch.cuda._sleep(50_000_000)  # ~tens of ms: the default stream runs ahead meanwhile
            staged.copy_(x)
            y = op(staged)
        torch.cuda.current_stream().wait_stream(s)
        torch.testing.assert_close(y, expected, equal_nan=False, msg=lambda m, w=what: f"{w}: {m}")
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


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_bias_act_layouts(dtype):
    """bias_act along every kind of dim (1-D input, first, last, middle) against the CPU ops, first
    and second derivatives (float64 gradgradcheck, on the small shapes); the large shapes take
    the bias-gradient kernels' other plans: NCHW rows of 196 (packets) and of 2^18 (split into
    warp segments), a Linear output and channels-last images (columns, chunks of rows)."""
    torch.manual_seed(0)
    small = [
        ((7,), 0, False),
        ((6, 5), 0, False),
        ((6, 5), -1, False),
        ((3, 4, 5, 2), 2, False),
        ((4, 24, 7, 7), 1, False),
    ]
    large = [
        ((64, 256, 14, 14), 1, False),
        ((2, 3, 512, 512), 1, False),
        ((8192, 1024), -1, False),
        ((16, 64, 28, 28), 1, True),
    ]
    for shape, dim, channels_last in small + large:
        x, b = torch.randn(shape), torch.randn(shape[dim])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        res = {}
        for device in ("cpu", "cuda"):
            xs, bs = (t.to(dtype).to(device).requires_grad_() for t in (x, b))
            y = fused_act.bias_act(xs, bs, "gelu", dim=dim)
            res[device] = [t.cpu() for t in (y, *torch.autograd.grad(y, (xs, bs), torch.ones_like(y)))]
        atol, rtol = BWD_TOL[dtype]
        n = x.numel() // b.numel()
        for k, (a, c) in enumerate(zip(res["cuda"], res["cpu"])):
            assert_close(a, c.double(), (2 * atol * (n if k == 2 else 1), 4 * rtol), f"bias_act {shape} {dim} {k}")
        if (shape, dim, channels_last) not in small:
            continue
        x64, b64 = (t.double().cuda().requires_grad_() for t in (x, b))
        assert torch.autograd.gradgradcheck(lambda t, u, d=dim: fused_act.bias_act(t, u, "gelu", dim=d), (x64, b64))


# softmax: one shape per branch of plan_softmax (tests/test_softmax.py::test_cuda_plan), rows with
# -inf, an all -inf row and a misaligned input, forward and backward against torch in float64.
SOFTMAX_CASES = [
    ((1000, 10), -1),  # 4 lanes per row, 8 rows per warp
    ((512, 1000), -1),  # a warp per row
    ((64, 5000), -1),  # a block per row
    ((2, 1_000_003), -1),  # a row split across blocks, scalar tail
    ((64, 128, 50), 1),  # columns
    ((100_000, 3), 0),  # 3 columns split across blocks
    ((8, 3, 7), -1),
]


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_softmax_every_plan(dtype, log):
    from test_softmax import close

    ours, ref = (fused_act.log_softmax, torch.log_softmax) if log else (fused_act.softmax, torch.softmax)
    torch.manual_seed(0)
    for shape, dim in SOFTMAX_CASES:
        x = (torch.randn(shape, dtype=torch.float64) * 4).to(dtype)
        xm = x.movedim(dim, -1)  # a view with the rows along the last axis
        xm[..., 0] = -torch.inf  # -inf inside every row
        xm[(0,) * (xm.dim() - 1)] = -torch.inf  # one row of only -inf: NaN, as torch
        g = torch.randn(shape, dtype=torch.float64).to(dtype)
        xc = x.cuda().requires_grad_()
        y = ours(xc, dim)
        (dx,) = torch.autograd.grad(y, xc, g.cuda())
        x64 = x.double().requires_grad_()
        r = ref(x64, dim)
        (dr,) = torch.autograd.grad(r, x64, torch.where(r.isfinite(), g.double(), 0))
        close(y.detach().cpu(), r.detach(), dtype, f"cuda {shape} {dim} forward")
        finite = r.isfinite().all(dim, keepdim=True).expand_as(r)  # rows torch can differentiate
        close(torch.where(finite, dx.cpu(), 0), torch.where(finite, dr, 0), dtype, f"cuda {shape} {dim} backward")
    base = torch.randn(4097, device="cuda").to(dtype)
    x = base[1:].view(4, 1024)  # misaligned: no 16-byte packets
    close(ours(x, -1).cpu(), ref(x.double(), -1).cpu(), dtype, "misaligned")


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.get_device_properties(0).total_memory < 24 << 30,
    reason="needs 24 GiB of GPU memory",
)
def test_cuda_more_than_2_31_elements():
    """64-bit indexing: elements past 2^31 are computed, by the elementwise, bias_act and softmax kernels."""
    n = (1 << 31) + 4 * 1024
    x = torch.full((n,), -1.0, dtype=torch.bfloat16, device="cuda")
    x[-5:] = 2.0
    y = fused_act.relu(x)
    assert y[-5:].eq(2.0).all() and y[-4000:-5].eq(0).all() and y[:10].eq(0).all()
    del y
    y = fused_act.bias_act(x.view(-1, 1), torch.ones(1, dtype=torch.bfloat16, device="cuda"), "relu", dim=1)
    assert y[-5:].eq(3.0).all() and y[:10].eq(0).all()
    del y
    p = fused_act.softmax(x.view(-1, 1024), -1)  # rows past element 2^31
    torch.testing.assert_close(p[-1].float(), torch.softmax(x[-1024:].float(), -1), atol=1e-2, rtol=1e-2)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(
    "shape,channels_last",
    # NCHW rows, short rows (the expanded per-column shape), channels-last with a channel count
    # that keeps float coefficient packets aligned and one that does not, narrow channels-last
    # rows (16 taken as one: the device branch's repeated coefficients and folded sums), a Linear
    # output
    [
        ((8, 24, 16, 16), False),
        ((8, 96, 4, 4), False),
        ((4, 32, 7, 7), True),
        ((4, 30, 7, 7), True),
        ((8, 16, 16, 16), True),
        ((64, 19), False),
    ],
)
def test_cuda_batch_norm_act(shape, channels_last, training, dtype):
    """batch_norm_act on CUDA (the statistics and the backward's sums in the reduce-only sum
    kernels, coefficients in float) against torch in float64 and against the CPU kernels."""
    c = shape[1]
    g0 = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=g0, dtype=torch.float64) * 1.5 + 0.7).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.rand(c, generator=g0, dtype=torch.float64) + 0.5).to(dtype)
    b = (torch.rand(c, generator=g0, dtype=torch.float64) - 0.5).to(dtype)
    grad = (torch.rand(shape, generator=g0, dtype=torch.float64) * 2 - 1).to(dtype)
    results = {}
    for device in ("cpu", "cuda"):
        xs, ws, bs = (t.to(device).requires_grad_() for t in (x, w, b))
        rm, rv = torch.zeros(c, dtype=dtype, device=device), torch.ones(c, dtype=dtype, device=device)
        y = fused_act.batch_norm_act(xs, rm, rv, ws, bs, training, 0.1, 1e-5, "silu")
        grads = torch.autograd.grad(y, (xs, ws, bs), grad.to(device))
        results[device] = [t.cpu() for t in (y, rm, rv, *grads)]
    leaves = [t.double().requires_grad_() for t in (x, w, b)]
    rm, rv = torch.zeros(c, dtype=torch.float64), torch.ones(c, dtype=torch.float64)
    ref = torch.nn.functional.silu(torch.nn.functional.batch_norm(leaves[0], rm, rv, leaves[1], leaves[2], training))
    expected = [ref.detach(), rm, rv, *torch.autograd.grad(ref, leaves, grad.double())]
    tol = {torch.float64: 1e-8, torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 3e-2}[dtype]
    for what, ours, cpu, exp in zip(
        ("y", "running_mean", "running_var", "dx", "dw", "db"), results["cuda"], results["cpu"], expected
    ):
        scale = exp.abs().max().item() + 1.0
        torch.testing.assert_close(
            ours.double() / scale,
            exp.to(ours.dtype).double() / scale,
            atol=tol,
            rtol=tol,
            msg=lambda m, what=what: f"cuda {what}: {m}",
        )
        torch.testing.assert_close(
            ours.double() / scale,
            cpu.double() / scale,
            atol=tol,
            rtol=tol,
            msg=lambda m, what=what: f"cuda vs cpu {what}: {m}",
        )
