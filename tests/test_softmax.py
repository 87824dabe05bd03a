"""fused_act.softmax / log_softmax against torch: values and gradients over dtype x shape x dim,
special rows (-inf, length 1, 10^5), gradcheck / gradgradcheck, opcheck, torch.compile, errors,
and the CUDA kernel's thread phases simulated on the CPU."""

from __future__ import annotations

import pickle
import types

import pytest
import torch
from conftest import DEVICES, DTYPES, ISAS, run_under_isa

import fused_act

ops = torch.ops.fused_act
FUNCS = {"softmax": (fused_act.softmax, torch.softmax), "log_softmax": (fused_act.log_softmax, torch.log_softmax)}

# |ours - reference| <= atol + rtol * |reference|; the reference is torch in float64 on the same
# (already rounded) input, rounded to the dtype. Reduced types: one rounding of the result, plus,
# for log_softmax near 0 and backward, an absolute error of about one ulp of the row's scale.
TOL = {
    torch.float64: (1e-12, 1e-10),
    torch.float32: (2e-6, 2e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}

# (shape, dim): last dim (inner == 1: rows shorter than a vector, a vector long, with a partial
# chunk, in groups of 16 rows with a shorter last group, long rows one by one), first, middle
# (inner > 1: unrolled blocks of rows, single SIMD chunks and scalar tails, under AVX2 and
# AVX-512), rows of length 1, a 0-dim tensor.
SHAPES = [
    ((7, 33), -1),
    ((21, 10), -1),
    ((18, 3), -1),
    ((17, 16), -1),
    ((5, 47), -1),
    ((3, 700), -1),
    ((7, 33), 0),
    ((7, 33), 1),
    ((3, 5, 19), 1),
    ((2, 37, 4, 3), 1),
    ((4, 64, 40), -2),
    ((2, 9, 77), 1),
    ((3, 6, 150), 1),
    ((5, 1), -1),
    ((1, 8), 0),
    ((), 0),
    ((), -1),
    ((300,), 0),
]


def close(actual, expected, dtype, what=""):
    atol, rtol = TOL[dtype]
    torch.testing.assert_close(
        actual.double(), expected.to(dtype).double(), atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"{what}\n{m}"
    )


def sample(shape, dtype, device, scale=4.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape,dim", SHAPES, ids=str)
@pytest.mark.parametrize("name", FUNCS)
def test_forward_backward_match_torch(name, shape, dim, dtype, device):
    ours, ref = FUNCS[name]
    x = sample(shape, dtype, device)
    g = sample(shape, dtype, device, scale=1.0, seed=1)
    y = ours(x, dim)
    assert y.dtype == dtype and y.shape == x.shape and y.device == x.device
    y64 = ref(x.double(), dim)
    close(y, y64, dtype, f"{name} forward")

    # Backward from the op's own (rounded) y, as autograd runs it; the reference differentiates
    # the float64 composition at the same input.
    x_ = x.detach().clone().requires_grad_()
    (dx,) = torch.autograd.grad(ours(x_, dim), x_, g)
    x64 = x.double().requires_grad_()
    (dx64,) = torch.autograd.grad(ref(x64, dim), x64, g.double())
    close(dx, dx64, dtype, f"{name} backward")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", FUNCS)
def test_same_dtype_torch(name, dtype):
    """Agrees with torch run on the same dtype (torch also computes reduced types in float)."""
    ours, ref = FUNCS[name]
    x = sample((9, 257), dtype, "cpu")
    close(ours(x, -1), ref(x, -1), dtype)
    close(ours(x, 0), ref(x, 0), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("name", FUNCS)
def test_long_rows(name, dtype):
    ours, ref = FUNCS[name]
    x = sample((2, 100_000), dtype, "cpu")
    close(ours(x, -1), ref(x.double(), -1), dtype)
    xt = sample((100_000, 3), dtype, "cpu")
    close(ours(xt, 0), ref(xt.double(), 0), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dim", [-1, 0])
@pytest.mark.parametrize("n", [40, 10])
def test_infinities_match_torch(name, dim, dtype, n):
    """-inf entries give 0 (-inf for log); a row of only -inf gives NaN like torch; +inf and
    NaN give NaN rows. The backward at those rows matches torch too. Rows of 40 and of 10
    (shorter than a vector: one partial chunk)."""
    ours, ref = FUNCS[name]
    x = sample((6, n), torch.float64, "cpu")
    x[0, ::3] = -torch.inf
    x[1, :] = -torch.inf
    x[2, 5] = torch.inf
    x[3, 7] = torch.nan
    x[4, : n - 1] = -torch.inf
    x = x.to(dtype)
    if dim == 0:
        x = x.t().contiguous()
    expected = ref(x.double(), dim)
    y = ours(x, dim)
    assert torch.equal(y.isnan(), expected.isnan())
    close(y, expected, dtype)
    g = sample(x.shape, dtype, "cpu", scale=1.0, seed=2)
    dx = ops.softmax_backward(g, y, dim, name == "log_softmax")
    backward_data = torch._log_softmax_backward_data if name == "log_softmax" else torch._softmax_backward_data
    expected_dx = backward_data(g.double(), expected, dim, torch.float64)
    assert torch.equal(dx.isnan(), expected_dx.isnan())
    close(dx, expected_dx, dtype)


@pytest.mark.parametrize("name", FUNCS)
def test_strided_input(name):
    ours, ref = FUNCS[name]
    x = sample((8, 30, 6), torch.float32, "cpu")
    for view, dim in [(x.transpose(0, 2), 0), (x[:, ::2, 1:], -1), (x.permute(1, 2, 0), 1)]:
        y = ours(view, dim)
        assert y.is_contiguous()
        close(y, ref(view.double(), dim), torch.float32)


@pytest.mark.parametrize("name", FUNCS)
def test_empty(name):
    ours, ref = FUNCS[name]
    for shape, dim in [((0,), 0), ((0, 5), 1), ((5, 0), 1), ((3, 0, 2), 1)]:
        x = torch.randn(shape)
        assert ours(x, dim).shape == ref(x, dim).shape


@pytest.mark.parametrize("shape,dim", [((3, 6), -1), ((4, 5, 3), 1), ((5, 4), 0), ((), 0)], ids=str)
@pytest.mark.parametrize("name", FUNCS)
def test_gradcheck_and_gradgradcheck(name, shape, dim):
    ours, _ = FUNCS[name]
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ours(t, dim), (x,))
    assert torch.autograd.gradgradcheck(lambda t: ours(t, dim), (x,))


@pytest.mark.parametrize("name", FUNCS)
def test_backward_op_gradcheck(name):
    """The backward op alone, in both its inputs (g and y treated as independent)."""
    log = name == "log_softmax"
    y = FUNCS[name][0](torch.randn(4, 7, dtype=torch.float64), 1).requires_grad_()
    g = torch.randn(4, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: ops.softmax_backward(a, b, 1, log), (g, y))


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("shape,dim", [((4, 9), 1), ((3, 5, 2), 1), ((6,), 0)], ids=str)
def test_opcheck(shape, dim, log):
    x = torch.randn(shape, requires_grad=True)
    y = ops.softmax(x.detach(), dim, log)
    torch.library.opcheck(ops.softmax, (x, dim, log))
    torch.library.opcheck(ops.softmax_backward, (torch.randn(shape, requires_grad=True), y.requires_grad_(), dim, log))


@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compile_fullgraph(backend):
    torch._dynamo.reset()

    def f(t):
        return fused_act.softmax(t, -1) * 2 + fused_act.log_softmax(t, 0)

    x = torch.randn(5, 6, requires_grad=True)
    compiled = torch.compile(f, fullgraph=True, backend=backend)
    y = compiled(x)
    torch.testing.assert_close(y, f(x))
    (dx,) = torch.autograd.grad((y * torch.arange(6.0)).sum(), x)
    x2 = x.detach().requires_grad_()
    (dx_ref,) = torch.autograd.grad((f(x2) * torch.arange(6.0)).sum(), x2)
    torch.testing.assert_close(dx, dx_ref)


def test_modules():
    x = torch.randn(3, 4, 5)
    torch.testing.assert_close(fused_act.nn.Softmax(dim=1)(x), torch.nn.Softmax(dim=1)(x))
    torch.testing.assert_close(fused_act.nn.LogSoftmax(dim=-1)(x), torch.nn.LogSoftmax(dim=-1)(x))
    with pytest.warns(UserWarning, match="Implicit dimension"):
        torch.testing.assert_close(fused_act.nn.Softmax()(x), torch.softmax(x, 0))
    assert repr(fused_act.nn.LogSoftmax(2)) == "LogSoftmax(dim=2)"
    assert fused_act.nn.Softmax(1).state_dict() == {}


class Marked(torch.Tensor):
    """A subclass: the builtin hands it to the Python function (torch.Tensor's exact type only)."""


@pytest.mark.parametrize("name", FUNCS)
def test_builtin_and_its_python_path_match_torch(name):
    """fused_act.softmax / log_softmax are builtins (csrc/python_functional.cpp) that run (x, dim)
    with an int dim in C; dim by keyword, the default dim and a subclass (the Python function)
    must give torch's float64 values and gradients too."""
    ours, ref = FUNCS[name]
    assert isinstance(ours, types.BuiltinFunctionType)
    assert pickle.loads(pickle.dumps(ours)) is ours
    x = sample((4, 9), torch.float32, "cpu")
    g = sample((4, 9), torch.float32, "cpu", seed=1)
    for dim, call in (
        (0, lambda t: ours(t, 0)),
        (0, lambda t: ours(t, dim=0)),
        (-2, lambda t: ours(t, dim=-2)),
        (-1, lambda t: ours(t)),
        (0, lambda t: ours(t.as_subclass(Marked), 0)),
    ):
        x64 = x.double().requires_grad_()
        y64 = ref(x64, dim)
        (dx64,) = torch.autograd.grad(y64, x64, g.double())
        leaf = x.clone().requires_grad_()
        y = call(leaf)
        (dx,) = torch.autograd.grad(y, leaf, g)
        close(y.detach(), y64.detach(), torch.float32, f"{name} dim={dim}")
        close(dx, dx64, torch.float32, f"{name} backward dim={dim}")
    for bad in (1.0, True, "1", None):
        with pytest.raises(TypeError, match=f"fused_act.{name}: dim must be an int, got"):
            ours(x, bad)
        with pytest.raises(TypeError, match=f"fused_act.{name}: dim must be an int, got"):
            ours(x, dim=bad)
    with pytest.raises(TypeError, match="unexpected keyword argument 'axis'"):
        ours(x, axis=0)
    with pytest.raises(IndexError, match=f"fused_act.{name}: dim 1180591620717411303424 is out of range"):
        ours(x, 2**70)


@pytest.mark.parametrize("name", FUNCS)
def test_bad_input(name):
    ours, _ = FUNCS[name]
    with pytest.raises(TypeError, match=f"fused_act.{name}: expected a floating-point tensor"):
        ours(torch.arange(6).reshape(2, 3), -1)
    with pytest.raises(IndexError, match=f"fused_act.{name}: dim 2 is out of range"):
        ours(torch.randn(2, 3), 2)
    with pytest.raises(IndexError, match=f"fused_act.{name}: dim -3 is out of range"):
        ours(torch.randn(2, 3), -3)
    with pytest.raises(IndexError, match=f"fused_act.{name}: dim 1 is out of range"):
        ours(torch.tensor(1.0), 1)
    meta = torch.randn(2, 3, device="meta")
    assert ours(meta, -1).device.type == "meta"  # the fake kernel, for tracing
    cpu_kernel = torch._C.DispatchKeySet(torch._C.DispatchKey.CPU)
    with pytest.raises(RuntimeError, match=f"fused_act.{name}: expected a CPU or CUDA tensor"):
        ops.softmax.default.redispatch(cpu_kernel, meta, -1, name == "log_softmax")
    with pytest.raises(RuntimeError, match=f"fused_act.{name} backward: grad has shape"):
        ops.softmax_backward(torch.randn(2, 4), torch.randn(2, 3), -1, name == "log_softmax")


# The CUDA kernels' split of the work, simulated on the CPU (csrc/simulation/softmax_simulation.cpp):
# lanes as on the GPU (4 lanes of a warp, a warp, a block) and odd counts that leave some lanes
# with fewer elements or none; 16-byte packets with scalar heads and tails; rows split into
# parts whose online statistics (max, rescaled sum) are merged in a second pass.
SIM_SHAPES = [((5, 70), -1), ((3, 2003), 1), ((4, 7, 3), 1), ((2, 5), -1), ((3, 1001, 2), 1)]


def _special(x, dim):
    """Rows (along dim) with -inf inside, only -inf (NaN, as torch), +inf, NaN: torch's two-pass rules."""
    xm = x.movedim(dim, -1).contiguous()
    rows = xm.view(-1, xm.shape[-1])
    rows[0, 0] = -torch.inf
    if rows.shape[0] > 3 and rows.shape[1] > 2:
        rows[1, :] = -torch.inf
        rows[2, 1] = torch.inf
        rows[3, 2] = torch.nan
    return xm.movedim(-1, dim)


@pytest.mark.parametrize("vec", [False, True])
@pytest.mark.parametrize("lanes,splits", [(1, 1), (3, 1), (4, 1), (32, 1), (256, 1), (32, 3), (256, 7)])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("log", [False, True])
def test_cuda_simulation(log, dtype, lanes, splits, vec):
    ref = torch.log_softmax if log else torch.softmax
    for shape, dim in SIM_SHAPES:
        x = _special(sample(shape, dtype, "cpu"), dim)
        g = sample(shape, dtype, "cpu", scale=1.0, seed=3)
        inner_is_1 = dim in (-1, len(shape) - 1)
        v = 16 // x.element_size() if vec and inner_is_1 else 1
        y = ops._simulate_cuda_softmax(x, None, dim, log, lanes, splits, v, 0)
        close(y, ref(x.double(), dim), dtype, f"simulated forward {shape} {dim}")
        y = ref(x.double(), dim).to(dtype)  # backward from torch's output, finite rows only
        g = torch.where(y.isfinite(), g, 0)
        dx = ops._simulate_cuda_softmax(y, g, dim, log, lanes, splits, v, 0)
        torch.testing.assert_close(
            dx, ops.softmax_backward(g, y, dim, log), atol=TOL[dtype][0] * 4, rtol=TOL[dtype][1], equal_nan=True
        )


@pytest.mark.parametrize("sm_count", [4, 132])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("log", [False, True])
def test_cuda_simulation_as_planned(log, dtype, sm_count):
    """The split plan_softmax picks for a small GPU and an H100/H200-sized one, including a long
    row split across blocks and a long non-last dim (a few columns) split across blocks."""
    ref = torch.log_softmax if log else torch.softmax
    for shape, dim in [((2, 100_003), -1), ((1, 30_000, 3), 1), ((7, 33), -1), ((500, 40), 0), ((64, 1000), -1)]:
        x = sample(shape, dtype, "cpu")
        y = ops._simulate_cuda_softmax(x, None, dim, log, 0, 0, 0, sm_count)
        close(y, ref(x.double(), dim), dtype, f"planned forward {shape} {dim}")
        g = sample(shape, dtype, "cpu", scale=1.0, seed=3)
        dx = ops._simulate_cuda_softmax(y, g, dim, log, 0, 0, 0, sm_count)
        torch.testing.assert_close(dx, ops.softmax_backward(g, y, dim, log), atol=TOL[dtype][0] * 4, rtol=TOL[dtype][1])


def test_cuda_plan():
    """What the kernels are launched with (columns, lanes, cols, vec, splits, chunk), 132 SMs."""

    def plan(shape, dim, dtype=torch.float32):
        return ops._cuda_softmax_plan(torch.empty(shape, dtype=dtype), dim, 132)

    assert plan((1000, 10), -1)[:5] == [0, 4, 1, 4, 1]  # 8 short rows per warp, float4 packets
    assert plan((4096, 1000), -1)[:5] == [0, 32, 1, 4, 1]  # a warp per row
    assert plan((4096, 1000), -1, torch.bfloat16)[3] == 8  # 8 bfloat16 per 16-byte packet
    assert plan((4096, 5000), -1)[:5] == [0, 256, 1, 4, 1]  # a block per row, enough rows
    cols, lanes, _, _, splits, chunk = plan((2, 1_000_000), -1)[:6]
    assert (cols, lanes) == (0, 256) and splits > 16 and chunk % 4 == 0  # a long row over many blocks
    c = plan((100_000, 3), 0)
    assert c[:3] == [1, 64, 4] and c[4] > 16  # 3 columns: 64 lanes along D each, split across blocks
    assert plan((64, 128, 50), 1)[:3] == [1, 8, 32]  # many columns: a warp's width of them per block
    misaligned = torch.empty(1001)[1:].view(10, 100)  # x.contiguous() keeps the offset: no packets
    assert ops._cuda_softmax_plan(misaligned, -1, 132)[3] == 1


@pytest.mark.parametrize("isa", ISAS)
def test_every_cpu_instruction_set(isa):
    """Each per-ISA build of the softmax kernels, forced in a fresh process: last-dim rows long
    and short (grouped, shorter than a vector, partial chunks of even and odd length), strided
    rows (reduced types: with the summands in float scratch, and 2100 long, too long for it)."""
    script = r"""
import torch, fused_act, sys
torch.manual_seed(0)
bad = []
# Reduced types: backward reads y rounded to the dtype, so dx carries ~1 ulp of |g| (std-normal g).
for dtype, tol in [(torch.float32, 2e-5), (torch.bfloat16, 3e-2), (torch.float64, 1e-10), (torch.float16, 4e-3)]:
    for shape, dim in [((9, 1000), -1), ((37, 10), -1), ((20, 3), -1), ((19, 32), -1), ((7, 33), -1), ((5, 47), -1),
                       ((6, 50, 37), 1), ((2, 2100, 70), 1), ((3, 40), 1), ((4, 5), 0)]:
        for ours, ref in [(fused_act.softmax, torch.softmax), (fused_act.log_softmax, torch.log_softmax)]:
            x = (torch.randn(shape, dtype=torch.float64) * 4).to(dtype).requires_grad_()
            g = torch.randn(shape, dtype=torch.float64).to(dtype)
            y = ours(x, dim)
            (dx,) = torch.autograd.grad(y, x, g)
            x64 = x.detach().double().requires_grad_()
            r = ref(x64, dim)
            (dr,) = torch.autograd.grad(r, x64, g.double())
            for a, b in ((y, r), (dx, dr)):
                if not torch.allclose(a.double(), b.detach().to(dtype).double(), rtol=tol, atol=tol):
                    bad.append((ours.__name__, str(dtype), shape, dim, (a.double() - b).abs().max().item()))
print(fused_act.info()["cpu_isa"])
print(bad)
sys.exit(1 if bad else 0)
"""
    run_under_isa(isa, script)
