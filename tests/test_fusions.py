"""bias_act, glu (swiglu, geglu, reglu) and gated against eager torch compositions in float64:
forward, backward (the bias gradient included), double backward, every activation and
parameter case, every dtype, the memory layouts each op handles specially; then opcheck,
torch.compile, and the CUDA thread body run over a simulated grid on the same layouts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    BWD_TOL,
    CASE_IDS,
    CASES,
    DTYPES,
    FWD_TOL,
    ISAS,
    assert_close,
    run_under_isa,
    sample_input,
    simulated_cuda,
)

import fused_act
from fused_act.registry import ACTIVATIONS

ops = torch.ops.fused_act


def reference(name, params):
    spec = ACTIVATIONS[name]
    return lambda t: spec.reference(t, **params)


def away_from_kinks(name, params, shape, dtype, seed=0):
    """Values spread over the activation's range, none within 1e-2 of a kink."""
    n = 1
    for s in shape:
        n *= s
    return sample_input(name, params, torch.float64, "cpu", n=n, seed=seed).view(shape).to(dtype)


# ------------------------------------------------------------------ bias_act

# (shape, dim, channels-last): Linear outputs, images in both memory formats, other dims, a
# strided view (computed in a contiguous copy).
BIAS_LAYOUTS = {
    "linear": ((33, 19), 1, False),
    "linear-dim-1": ((33, 19), -1, False),
    "nchw": ((3, 5, 4, 7), 1, False),
    "nhwc": ((3, 5, 4, 7), 1, True),
    "dim0": ((6, 9, 5), 0, False),
    "dim2": ((4, 3, 17), 2, False),
    "one-channel": ((5, 1, 3, 3), 1, False),
    "1d": ((37,), 0, False),  # an unbatched Linear output: no dim to sum the bias gradient over
    # Long enough that the CUDA bias-gradient kernels split the work (simulated with one SM): rows
    # of 256 into two warp segments; 40 rows of whole packets into two chunks.
    "nchw-long": ((2, 3, 16, 16), 1, False),
    # Many short rows, which the CPU front widens: a few pixels per channel (the bias expanded to
    # (channel, pixel) columns), a few channels innermost (the bias tiled along the row).
    "nchw-few-pixels": ((4, 300, 2, 3), 1, False),
    "few-pixels-dim2": ((4, 2, 150, 5), 2, False),
    "linear-few-channels": ((2048, 10), 1, False),
    "nhwc-few-channels": ((8, 3, 16, 16), 1, True),
    "linear-wide": ((40, 32), -1, False),
}


def make_bias_inputs(name, params, shape, dim, channels_last, dtype, seed=0):
    """x, bias such that x + bias avoids the kinks, and a gradient, in dtype."""
    c = shape[dim]
    g = torch.Generator().manual_seed(seed)
    bias = ((torch.rand(c, generator=g, dtype=torch.float64) - 0.5) * 2).to(dtype)
    view = [1] * len(shape)
    view[dim] = c
    z = away_from_kinks(name, params, shape, torch.float64, seed)
    x = (z - bias.double().view(view)).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    grad = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    # x + b in the dtype's precision can still land on a kink (y = relu6(5.99) rounds to 6 in
    # bfloat16, and eager's rounded x + b does the same): no gradient flows from those elements,
    # so the check does not depend on which side of the kink they fell.
    z = x.double() + bias.double().view(view)
    for k in ACTIVATIONS[name].kinks(**params):
        near = (z - k).abs() < max(1e-2, 8 * torch.finfo(dtype).eps * max(1.0, abs(k)))
        grad = torch.where(near, torch.zeros_like(grad), grad)
    return x, bias, grad.to(dtype), view


def bias_reference(name, params, x, bias, grad, view):
    x64 = x.double().requires_grad_()
    b64 = bias.double().requires_grad_()
    y64 = reference(name, params)(x64 + b64.view(view))
    dx64, db64 = torch.autograd.grad(y64, (x64, b64), grad.double())
    return y64.detach(), dx64, db64


def check_bias_act(name, params, layout, dtype):
    shape, dim, cl = BIAS_LAYOUTS[layout]
    x, bias, grad, view = make_bias_inputs(name, params, shape, dim, cl, dtype)
    y64, dx64, db64 = bias_reference(name, params, x, bias, grad, view)
    xr = x.clone().requires_grad_()
    br = bias.clone().requires_grad_()
    y = fused_act.bias_act(xr, br, name, dim=dim, **params)
    dx, db = torch.autograd.grad(y, (xr, br), grad)
    what = f"{name} {params} {layout} {dtype}"
    assert y.dtype == dtype and y.shape == x.shape
    if cl:
        assert y.is_contiguous(memory_format=torch.channels_last), "channels-last output expected"
    assert_close(y, y64, FWD_TOL[dtype], f"{what} forward")
    assert_close(dx, dx64, BWD_TOL[dtype], f"{what} grad x")
    # The bias gradient sums numel / C terms, each within the backward tolerance.
    atol, rtol = BWD_TOL[dtype]
    terms = x.numel() // shape[dim]
    assert_close(db, db64, (atol * terms, rtol * 4), f"{what} grad bias")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bias_act_every_activation(case, dtype):
    name, params = case
    for layout in ("linear", "nchw"):
        check_bias_act(name, params, layout, dtype)


@pytest.mark.parametrize("layout", list(BIAS_LAYOUTS))
@pytest.mark.parametrize("name", ["relu", "gelu", "sigmoid", "identity", "hardswish"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_bias_act_layouts(name, layout, dtype):
    check_bias_act(name, dict(ACTIVATIONS[name].params), layout, dtype)


def test_bias_act_strided_input():
    x = torch.randn(8, 12, dtype=torch.float64)[:, ::2]
    b = torch.randn(6, dtype=torch.float64)
    torch.testing.assert_close(fused_act.bias_act(x, b, "tanh"), torch.tanh(x + b))


def test_bias_act_large_reduction():
    """The fused bias sum over many chunks (4096 x 4096, as the benchmark) in float32."""
    x = torch.randn(4096, 4096)
    b = torch.randn(4096)
    g = torch.randn(4096, 4096)
    xr, br = x.clone().requires_grad_(), b.clone().requires_grad_()
    dx, db = torch.autograd.grad(fused_act.bias_act(xr, br, "silu", dim=1), (xr, br), g)
    x64, b64 = x.double().requires_grad_(), b.double().requires_grad_()
    dx64, db64 = torch.autograd.grad(F.silu(x64 + b64), (x64, b64), g.double())
    assert_close(dx, dx64, BWD_TOL[torch.float32])
    torch.testing.assert_close(db.double(), db64, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_bias_act_gradgradcheck(case):
    name, params = case
    small = {"linear": (2, 3), "linear-dim-1": (2, 3), "nchw": (2, 3, 2, 2), "1d": (7,), "dim2": (2, 2, 3)}
    for layout, shape in small.items():
        _, dim, cl = BIAS_LAYOUTS[layout]
        x, bias, _, _ = make_bias_inputs(name, params, shape, dim, cl, torch.float64, seed=1)
        x.requires_grad_()
        bias.requires_grad_()
        fn = lambda x, b: fused_act.bias_act(x, b, name, dim=dim, **params)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x, bias))
        assert torch.autograd.gradgradcheck(fn, (x, bias))


# ------------------------------------------------------------------ glu / gated

GLU_SHAPES = {
    "last": ((6, 10), -1),
    "odd-half": ((4, 2 * 7), -1),  # halves of 7: rows that are not whole packets
    "middle": ((3, 6, 5), 1),
    "first": ((4, 3, 2), 0),
}


def split(x, dim, gate):
    first, second = x.chunk(2, dim)
    return (first, second) if gate == "first" else (second, first)


def check_glu(name, params, shape_key, gate, dtype):
    shape, dim = GLU_SHAPES[shape_key]
    # the gate half spread over the activation's range, the other in [-1, 1]: the product then
    # carries the activation's own absolute error, which the tolerances are made for
    half_shape = list(shape)
    half_shape[dim] //= 2
    gate_half = away_from_kinks(name, params, half_shape, torch.float64)
    other = torch.rand(half_shape, dtype=torch.float64) * 2 - 1
    x = torch.cat([gate_half, other] if gate == "first" else [other, gate_half], dim).to(dtype)
    grad = (torch.rand(half_shape, dtype=torch.float64) * 2 - 1).to(dtype)
    x64 = x.double().requires_grad_()
    a64, u64 = split(x64, dim, gate)
    y64 = reference(name, params)(a64) * u64
    (dx64,) = torch.autograd.grad(y64, x64, grad.double())
    xr = x.clone().requires_grad_()
    y = fused_act.glu(xr, name, dim=dim, gate=gate, **params)
    (dx,) = torch.autograd.grad(y, xr, grad)
    what = f"{name} {params} {shape_key} gate={gate} {dtype}"
    assert y.shape == y64.shape and y.dtype == dtype
    # the product rounds once more than the activation alone: twice its tolerance
    atol, rtol = FWD_TOL[dtype]
    assert_close(y, y64.detach(), (2 * atol, 2 * rtol), f"{what} forward")
    atol, rtol = BWD_TOL[dtype]
    assert_close(dx, dx64, (2 * atol, 2 * rtol), f"{what} backward")


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_glu_every_activation(case, dtype):
    name, params = case
    for gate in ("first", "second"):
        check_glu(name, params, "last", gate, dtype)


@pytest.mark.parametrize("shape_key", list(GLU_SHAPES))
@pytest.mark.parametrize("gate", ["first", "second"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_glu_shapes(shape_key, gate, dtype):
    for name in ("silu", "gelu", "sigmoid"):
        check_glu(name, dict(ACTIVATIONS[name].params), shape_key, gate, dtype)


def test_glu_matches_torch_glu_and_shortcuts():
    x = torch.randn(6, 8, dtype=torch.float64)
    torch.testing.assert_close(fused_act.glu(x), F.glu(x))
    torch.testing.assert_close(fused_act.glu(x, dim=0), F.glu(x, dim=0))
    a, b = x.chunk(2, -1)
    torch.testing.assert_close(fused_act.swiglu(x), F.silu(b) * a)
    torch.testing.assert_close(fused_act.swiglu(x, gate="first"), F.silu(a) * b)
    torch.testing.assert_close(fused_act.geglu(x, approximate="tanh"), F.gelu(b, approximate="tanh") * a)
    torch.testing.assert_close(fused_act.reglu(x), F.relu(b) * a)
    torch.testing.assert_close(fused_act.gated(a, b, "silu"), F.silu(a) * b)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_glu_and_gated_gradgradcheck(case):
    name, params = case
    x = away_from_kinks(name, params, (3, 8), torch.float64, seed=2).requires_grad_()
    for gate in ("first", "second"):
        fn = lambda x: fused_act.glu(x, name, dim=-1, gate=gate, **params)  # noqa: E731
        assert torch.autograd.gradcheck(fn, (x,))
        assert torch.autograd.gradgradcheck(fn, (x,))
    a = away_from_kinks(name, params, (3, 4), torch.float64, seed=3).requires_grad_()
    u = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    fn = lambda a, u: fused_act.gated(a, u, name, **params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (a, u))
    assert torch.autograd.gradgradcheck(fn, (a, u))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_gated_layouts(dtype):
    """Two tensors of one shape in different memory formats: computed in the first's."""
    a = torch.randn(2, 3, 4, 5).to(dtype).contiguous(memory_format=torch.channels_last)
    u = torch.randn(2, 3, 4, 5).to(dtype)
    y = fused_act.gated(a, u, "silu")
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert_close(y, F.silu(a.double()) * u.double(), (2e-5 if dtype != torch.bfloat16 else 2e-2, 2e-2))


@pytest.mark.parametrize("isa", ISAS)
def test_every_cpu_instruction_set_fuses(isa):
    """bias_act's backward fuses the bias gradient (a per-channel sum, channels as rows or as
    columns) and gated's backward has two outputs: paths of the CPU loop the plain activations do
    not take, checked under each instruction-set build in a fresh process (the baseline's scalar
    loop on x86-64 included) against float64 compositions of torch ops."""
    script = r"""
import torch, fused_act, sys
import torch.nn.functional as F
isa = fused_act.info()["cpu_isa"]
bad = []
for dtype, tol in [(torch.float32, 1e-4), (torch.bfloat16, 5e-2), (torch.float64, 1e-9)]:
    for shape, dim in [((6, 70, 3, 5), 1), ((8, 160, 3, 3), 1), ((9, 333), 1), ((40000, 8), 1), ((3000, 7), 1)]:
        x = torch.randn(shape, dtype=torch.float64).to(dtype).requires_grad_()
        b = torch.randn(shape[dim], dtype=torch.float64).to(dtype).requires_grad_()
        g = torch.randn(shape, dtype=torch.float64).to(dtype)
        y = fused_act.bias_act(x, b, "gelu", dim=dim)
        dx, db = torch.autograd.grad(y, (x, b), g)
        view = [1] * len(shape)
        view[dim] = -1
        x64, b64 = x.detach().double().requires_grad_(), b.detach().double().requires_grad_()
        r = F.gelu(x64 + b64.view(view))
        rx, rb = torch.autograd.grad(r, (x64, b64), g.double())
        scale = x.numel() / shape[dim]
        for what, a, e, t in (("y", y, r, tol), ("dx", dx, rx, tol), ("db", db, rb, tol * scale ** 0.5)):
            if not torch.allclose(a.double(), e.detach(), rtol=t, atol=t):
                bad.append(("bias_act", str(dtype), shape, what, (a.double() - e).abs().max().item()))
    a = torch.randn(1001, dtype=torch.float64).to(dtype).requires_grad_()
    u = torch.randn(1001, dtype=torch.float64).to(dtype).requires_grad_()
    y = fused_act.gated(a, u, "silu")
    da, du = torch.autograd.grad(y.sum(), (a, u))
    a64, u64 = a.detach().double().requires_grad_(), u.detach().double().requires_grad_()
    r = F.silu(a64) * u64
    ra, ru = torch.autograd.grad(r.sum(), (a64, u64))
    for what, p, e in (("y", y, r), ("da", da, ra), ("du", du, ru)):
        if not torch.allclose(p.double(), e.detach(), rtol=tol, atol=tol):
            bad.append(("gated", str(dtype), what, (p.double() - e).abs().max().item()))
print(isa)
print(bad)
sys.exit(1 if bad else 0)
"""
    run_under_isa(isa, script)


def test_empty():
    x = torch.empty(0, 6)
    assert fused_act.glu(x).shape == (0, 3)
    assert fused_act.bias_act(x, torch.zeros(6), "relu").shape == (0, 6)
    xr, br = x.clone().requires_grad_(), torch.zeros(6, requires_grad=True)
    dx, db = torch.autograd.grad(fused_act.bias_act(xr, br, "gelu").sum(), (xr, br))
    assert dx.shape == (0, 6) and torch.equal(db, torch.zeros(6))


# ------------------------------------------------------------------ errors


def test_errors():
    x = torch.randn(4, 6)
    with pytest.raises(RuntimeError, match=r"fused_act.bias_act\(relu\): bias must be 1-D with x.size\(1\) = 6"):
        fused_act.bias_act(x, torch.zeros(5), "relu")
    with pytest.raises(TypeError, match=r"fused_act.bias_act\(relu\): bias has dtype Double"):
        fused_act.bias_act(x, torch.zeros(6, dtype=torch.float64), "relu")
    with pytest.raises(IndexError, match=r"fused_act.bias_act\(relu\): dim 2 is out of range"):
        fused_act.bias_act(x, torch.zeros(6), "relu", dim=2)
    with pytest.raises(TypeError, match=r"fused_act.bias_act\(relu\): expected a floating-point tensor"):
        fused_act.bias_act(x.int(), torch.zeros(6).int(), "relu")
    with pytest.raises(RuntimeError, match=r"fused_act.glu\(silu\): dimension 1 has odd size 5"):
        fused_act.swiglu(torch.randn(3, 5))
    with pytest.raises(ValueError, match="gate must be 'first' or 'second'"):
        fused_act.glu(x, gate="left")
    with pytest.raises(RuntimeError, match=r"fused_act.gated\(sigmoid\): u \(the gated tensor\) has shape"):
        fused_act.gated(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match="unknown activation"):
        fused_act.glu(x, "nope")


# ------------------------------------------------------------------ torch integration

OPCHECK_ACTS = [("relu", {}), ("gelu", {"approximate": "tanh"}), ("silu", {}), ("elu", {"alpha": 0.5})]


@pytest.mark.parametrize("name, params", OPCHECK_ACTS, ids=[a for a, _ in OPCHECK_ACTS])
def test_opcheck(name, params):
    kernel, args = ACTIVATIONS[name].kernel_args(params)
    x = torch.randn(4, 6, 3, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    from_output = fused_act.ops.saved_for(kernel, tuple(args)) != "input"
    saved = ops.activation(x.detach(), kernel, args) if from_output else x.detach()
    g = torch.randn(4, 6, 3)
    u = torch.randn(4, 6, 3, requires_grad=True)
    cases = [
        (ops.bias_act, (x, b, 1, kernel, args)),
        (ops.bias_act, (x.detach().contiguous().transpose(1, 2), b.detach(), 2, kernel, args)),
        (ops.bias_act_backward, (g, saved, b.detach(), 1, kernel, args, from_output)),
        (ops.glu, (x, 1, True, kernel, args)),
        (ops.glu_backward, (torch.randn(4, 3, 3), x.detach(), 1, False, kernel, args)),
        (ops.gated, (x, u, kernel, args)),
        (ops.gated_backward, (g, x.detach(), u.detach(), kernel, args)),
    ]
    for op, inputs in cases:
        torch.library.opcheck(op, inputs)


def test_compile_fullgraph():
    torch._dynamo.reset()

    def f(x, b, w):
        h = fused_act.bias_act(x, b, "gelu", dim=-1)
        return fused_act.swiglu(h).sum() + fused_act.gated(h, w, "silu").sum()

    x = torch.randn(8, 6, requires_grad=True)
    b = torch.randn(6, requires_grad=True)
    w = torch.randn(8, 6, requires_grad=True)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    expected = torch.autograd.grad(f(x, b, w), (x, b, w))
    got = torch.autograd.grad(compiled(x, b, w), (x, b, w))
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e)


# ------------------------------------------------------------------ CUDA thread body


@pytest.mark.parametrize("threads", [1, 7, 300])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_thread_body_bias_act(threads, dtype):
    """Every bias layout (bias per column, bias per row cycling through channels) through the
    CUDA kernels' thread bodies, the bias gradient through the row / column sum kernels and the
    second pass (csrc/cuda/elementwise_thread.cuh), packets and scalar path."""
    with simulated_cuda(threads):
        for layout in BIAS_LAYOUTS:
            for name in ("gelu", "sigmoid", "leaky_tanh"):
                check_bias_act(name, dict(ACTIVATIONS[name].params), layout, dtype)


@pytest.mark.parametrize("threads", [1, 7, 300])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_cuda_thread_body_glu_and_gated(threads, dtype):
    """Rows of whole packets (vectorized), of odd length (scalar path), both gates."""
    with simulated_cuda(threads):
        for shape_key in GLU_SHAPES:
            for gate in ("first", "second"):
                check_glu("silu", {}, shape_key, gate, dtype)
        a = torch.randn(37, dtype=torch.float64)
        u = torch.randn(37, dtype=torch.float64)
        a_, u_ = a.to(dtype).requires_grad_(), u.to(dtype).requires_grad_()
        y = fused_act.gated(a_, u_, "mish")
        da, du = torch.autograd.grad(y, (a_, u_), torch.ones(37, dtype=dtype))
        a64, u64 = a.to(dtype).double().requires_grad_(), u.to(dtype).double().requires_grad_()
        y64 = F.mish(a64) * u64
        da64, du64 = torch.autograd.grad(y64, (a64, u64), torch.ones(37, dtype=torch.float64))
        atol, rtol = BWD_TOL[dtype]
        assert_close(y, y64.detach(), (2 * atol, 2 * rtol), "gated forward")
        assert_close(da, da64, (2 * atol, 2 * rtol), "gated grad a")
        assert_close(du, du64, (2 * atol, 2 * rtol), "gated grad u")


def test_saved_bytes():
    """What autograd keeps, counted by storage: docs/fusions.md's table."""

    def saved(fn):
        sizes = {}

        def pack(t):
            sizes[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            fn()
        return sum(sizes.values())

    x = torch.randn(64, 32, requires_grad=True)
    b = torch.randn(32, requires_grad=True)
    assert saved(lambda: fused_act.bias_act(x, b, "identity")) == b.nbytes
    assert saved(lambda: fused_act.bias_act(x, b, "relu")) == x.nbytes + b.nbytes  # y and b
    assert saved(lambda: fused_act.bias_act(x, b, "gelu")) == x.nbytes + b.nbytes  # x and b
    x2 = torch.randn(64, 64, requires_grad=True)
    assert saved(lambda: fused_act.swiglu(x2)) == x2.nbytes
    assert saved(lambda: F.silu(x2[:, :32]) * x2[:, 32:]) == x2.nbytes + x2.nbytes // 2
