"""Memory modes of backward (fused_act/memory.py): the 1-bit mask of piecewise-linear
activations against torch's float64 reference and against the full-tensor backward, its bit
layout, layouts and odd sizes, gradcheck, opcheck, torch.compile, in-place use, the CUDA thread
body on a simulated grid, the bytes autograd really keeps, and the errors."""

from __future__ import annotations

import pytest
import torch
from conftest import (
    BWD_TOL,
    CASE_IDS,
    CASES,
    DEVICES,
    DTYPES,
    FWD_TOL,
    ISAS,
    assert_close,
    assert_compiles_like_eager,
    run_under_isa,
    sample_input,
)

import fused_act
from fused_act import _C
from fused_act.memory import saved_bytes_per_element
from fused_act.registry import ACTIVATIONS

ops = torch.ops.fused_act

MASKABLE = set(_C.maskable())  # from the functors' kMaskable (C++)
MASK_CASES = [c for c in CASES if c[0] in MASKABLE]
MASK_IDS = [i for c, i in zip(CASES, CASE_IDS) if c[0] in MASKABLE]


def full_mode(name, params):
    modes = fused_act.memory_modes(name, **params)
    return "output" if "output" in modes else "input"


def run(x, name, params, memory, grad, inplace=False):
    leaf = x.detach().clone().requires_grad_()
    src = leaf * 1.0 if inplace else leaf  # in place needs a non-leaf
    y = fused_act.activation(src, name, memory=memory, inplace=inplace, **params)
    (dx,) = torch.autograd.grad(y, leaf, grad)
    return y.detach(), dx


def with_kinks(name, params, x):
    kinks = ACTIVATIONS[name].kinks(**params)
    near = [k + d for k in kinks for d in (-1e-3, 1e-3)]
    return torch.cat([torch.tensor(kinks + near + [-0.0, 0.0], dtype=x.dtype), x])


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_maskable_exactly_where_the_derivative_takes_two_values(case):
    """The C++ flag checked against the torch reference: a maskable activation's derivative
    (torch autograd, float64, over its range) takes at most two values for every parameter set;
    every other one takes more with its default parameters (elu with alpha = 0 takes two, but
    the flag is per activation). identity keeps nothing, so it needs no mask."""
    name, params = case
    x = torch.linspace(-8, 8, 4001, dtype=torch.float64, requires_grad=True)
    (d,) = torch.autograd.grad(ACTIVATIONS[name].reference(x, **params).sum(), x)
    values = d.unique().numel()
    if name in MASKABLE:
        assert values <= 2, f"{name} is maskable but its derivative takes {values} values"
    elif name != "identity" and params == ACTIVATIONS[name].params:
        assert values > 2, f"{name} could keep a mask: its derivative takes {values} values"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", MASK_CASES, ids=MASK_IDS)
def test_mask_matches_reference_and_full_backward(case, dtype, device):
    """Values at the kinks included, numel not a multiple of 8. The mask backward multiplies
    the same derivative constants as the full-tensor backward, so the two agree exactly."""
    name, params = case
    x = with_kinks(name, params, sample_input(name, params, dtype, "cpu", n=4093)).to(device)
    assert x.numel() % 8 != 0
    g = (torch.rand(x.shape, dtype=torch.float64) * 2 - 1).to(dtype).to(device)
    y, dx = run(x, name, params, "mask", g)
    y_full, dx_full = run(x, name, params, full_mode(name, params), g)
    assert torch.equal(y, y_full) and torch.equal(dx, dx_full)
    x64 = x.double().requires_grad_()
    r = ACTIVATIONS[name].reference(x64, **params)
    (dr,) = torch.autograd.grad(r, x64, g.double())
    assert_close(y, r.detach(), FWD_TOL[dtype], f"{name} mask forward")
    assert_close(dx, dr, BWD_TOL[dtype], f"{name} mask backward")


@pytest.mark.parametrize("n", [1, 7, 8, 9, 63, 64, 65, 1000])
def test_mask_bit_layout(n):
    """Byte i bit j is element 8i + j of y in memory order; padding bits are 0."""
    x = torch.randn(n, dtype=torch.float64)
    x[::3] = 0.0  # relu'(0) = 0
    y, mask = ops.activation_mask(x, "relu", [])
    assert mask.dtype == torch.uint8 and mask.shape == ((n + 7) // 8,)
    bits = (mask[:, None] >> torch.arange(8, dtype=torch.uint8)) & 1
    expected = torch.zeros(mask.numel() * 8, dtype=torch.uint8)
    expected[:n] = (x > 0).to(torch.uint8)
    assert torch.equal(bits.flatten(), expected)
    torch.testing.assert_close(y, torch.relu(x))


LAYOUTS = {
    "transposed": lambda x: x.transpose(1, 3),
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "sliced": lambda x: x[:, 1:, ::2],
    "offset": lambda x: x.flatten()[3:].view(-1)[: 5 * 6 * 7],
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("grad_layout", ["contiguous", "channels_last", "expanded"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mask_layouts(layout, grad_layout, device):
    """The mask follows y's memory order; a gradient in any other layout is brought to it."""
    base = torch.randn(4, 5, 6, 7, dtype=torch.float64, device=device)
    x = LAYOUTS[layout](base)
    if grad_layout == "expanded":
        g = torch.randn(x.shape[1:], dtype=torch.float64, device=device).expand(x.shape)
    elif grad_layout == "channels_last" and x.dim() == 4:
        g = torch.randn(x.shape, dtype=torch.float64, device=device).contiguous(memory_format=torch.channels_last)
    else:
        g = torch.randn(x.shape, dtype=torch.float64, device=device)
    y, dx = run(x, "leaky_relu", {"negative_slope": 0.1}, "mask", g)
    if layout in ("transposed", "channels_last"):
        assert fused_act.leaky_relu(x, memory="mask").stride() == x.stride()
    xr = x.detach().requires_grad_()
    (dr,) = torch.autograd.grad(torch.nn.functional.leaky_relu(xr, 0.1), xr, g)
    torch.testing.assert_close(dx, dr)


@pytest.mark.parametrize("case", MASK_CASES, ids=MASK_IDS)
def test_gradcheck_and_gradgradcheck(case):
    name, params = case
    x = sample_input(name, params, torch.float64, "cpu", n=27, seed=1).requires_grad_()
    fn = lambda t: fused_act.activation(t, name, memory="mask", **params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", MASK_CASES, ids=MASK_IDS)
def test_opcheck(case, device):
    name, params = case
    kernel, args = ACTIVATIONS[name].kernel_args(params)
    x = torch.randn(3, 7, dtype=torch.float64, device=device, requires_grad=True)
    g = torch.randn(3, 7, dtype=torch.float64, device=device, requires_grad=True)
    _, mask = ops.activation_mask(x.detach(), kernel, args)
    torch.library.opcheck(ops.activation_mask, (x, kernel, args))
    torch.library.opcheck(ops.activation_mask_, (x.detach().clone(), kernel, args))
    torch.library.opcheck(ops.activation_mask_backward, (g, mask, kernel, args))


@pytest.mark.parametrize("inplace", [False, True])
def test_compile_fullgraph(inplace):
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32),
        fused_act.nn.ReLU(inplace=inplace, memory="mask"),
        torch.nn.Linear(32, 32),
        fused_act.nn.Hardtanh(-0.5, 0.5, inplace, memory="mask"),
        torch.nn.Linear(32, 4),
        fused_act.nn.Hardsigmoid(inplace=inplace),
    ).double()
    assert_compiles_like_eager(model, torch.randn(8, 16, dtype=torch.float64))


@pytest.mark.parametrize("case", MASK_CASES, ids=MASK_IDS)
def test_inplace_mask(case):
    """In place + mask: x's memory holds y, and backward needs nothing but the bits, so a
    later in-place change of y does not affect (or invalidate) the gradient."""
    name, params = case
    x0 = sample_input(name, params, torch.float64, "cpu", n=301)
    g = torch.randn_like(x0)
    y_ref, dx_ref = run(x0, name, params, "mask", g)
    leaf = x0.clone().requires_grad_()
    x = leaf * 1.0
    y = fused_act.activation(x, name, inplace=True, memory="mask", **params)
    assert y.data_ptr() == x.data_ptr()
    torch.testing.assert_close(y.detach(), y_ref)
    y.detach().mul_(7)  # stale y is fine: backward does not read it
    (dx,) = torch.autograd.grad(y, leaf, g)
    torch.testing.assert_close(dx, dx_ref)


# ------------------------------------------------------------------ CUDA body, simulated


def simulate(x, name, params, nthreads, offset=0):
    kernel, args = ACTIVATIONS[name].kernel_args(params)
    storage = torch.empty(x.numel() + offset, dtype=x.dtype)
    xin = storage[offset:].copy_(x)
    out = torch.full_like(xin, float("nan"))
    mask = torch.full(((x.numel() + 7) // 8,), 0xAA, dtype=torch.uint8)
    packets = ops._simulate_cuda_mask(out, mask, xin, kernel, args, False, nthreads)
    g = torch.randn(x.shape, dtype=torch.float64).to(x.dtype)
    dx = torch.full_like(xin, float("nan"))
    ops._simulate_cuda_mask(dx, mask, g, kernel, args, True, nthreads)
    return out, mask, g, dx, packets


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", MASK_CASES, ids=MASK_IDS)
def test_cuda_body_simulation_matches_cpu(case, dtype):
    name, params = case
    kernel, args = ACTIVATIONS[name].kernel_args(params)
    x = with_kinks(name, params, sample_input(name, params, dtype, "cpu", n=1001))
    for nthreads, offset in [(1, 0), (5, 0), (64, 0), (7, 1)]:
        out, mask, g, dx, packets = simulate(x, name, params, nthreads, offset)
        assert packets == (offset == 0)
        y_cpu, mask_cpu = ops.activation_mask(x, kernel, args)
        # y may differ in the last bit (x/6 + 1/2 contracted to an FMA in one build, not the other)
        assert_close(out, y_cpu, FWD_TOL[dtype], f"{name} simulated forward {nthreads, offset}")
        assert torch.equal(mask, mask_cpu), (nthreads, offset)
        assert torch.equal(dx, ops.activation_mask_backward(g, mask_cpu, kernel, args)), (nthreads, offset)


@pytest.mark.parametrize("n", [0, 1, 8, 13, 16, 17, 100])
def test_cuda_body_simulation_covers_every_byte(n):
    x = torch.randn(n)
    out, mask, _, dx, _ = simulate(x, "relu", {}, nthreads=3)
    assert not out.isnan().any() and not dx.isnan().any()
    assert torch.equal(mask, ops.activation_mask(x, "relu", [])[1])


# ------------------------------------------------------------------ what is saved


class SavedBytes:
    def __init__(self):
        self.nbytes = 0

    def __enter__(self):
        def pack(t):
            self.nbytes += t.numel() * t.element_size()
            return t

        self.hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc):
        self.hooks.__exit__(*exc)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64], ids=str)
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_saved_bytes_match_autograd(case, inplace, dtype):
    """saved_bytes_per_element against what autograd really holds, for every mode."""
    name, params = case
    n = 1024
    for memory in fused_act.memory_modes(name, **params):
        leaf = torch.randn(n, dtype=dtype, requires_grad=True)
        with SavedBytes() as saved:
            y = fused_act.activation(leaf * 1.0, name, inplace=inplace, memory=memory, **params)
        assert saved.nbytes / n == saved_bytes_per_element(name, dtype, memory, **params), (memory, saved.nbytes)
        y.sum().backward()


def test_saved_bytes_figures():
    assert saved_bytes_per_element("relu", torch.float32, "mask") == 0.125
    assert saved_bytes_per_element("relu", torch.float32, "output") == 4
    assert saved_bytes_per_element("hardsigmoid", torch.bfloat16, "input") == 2
    assert saved_bytes_per_element("gelu", torch.float32) == 4
    assert saved_bytes_per_element("identity", torch.float32) == 0
    expected_auto = 0.125 if fused_act.memory.AUTO_PREFERS_MASK else 4
    assert saved_bytes_per_element("relu", torch.float32) == expected_auto


@pytest.mark.parametrize("prefers_mask", [True, False])
def test_auto_follows_auto_prefers_mask(monkeypatch, prefers_mask):
    """The memory decision is cached per call signature; the cache must follow the flag
    (each case runs after a call that cached the other setting)."""
    n = 1024
    for flag in (not prefers_mask, prefers_mask):
        monkeypatch.setattr(fused_act.memory, "AUTO_PREFERS_MASK", flag)
        leaf = torch.randn(n, requires_grad=True)
        with SavedBytes() as saved:
            fused_act.relu(leaf * 1.0).sum().backward()
    assert saved.nbytes / n == (0.125 if prefers_mask else 4)


def test_mask_without_grad_keeps_nothing():
    """memory='mask' without a gradient to compute runs the plain forward (no mask made) and
    still validates the mode."""
    x = torch.randn(1000) * 3
    with SavedBytes() as saved:
        y = fused_act.relu(x, memory="mask")
        with torch.no_grad():
            z = fused_act.relu(x.clone().requires_grad_(), memory="mask")
    assert saved.nbytes == 0 and not z.requires_grad
    torch.testing.assert_close(y, x.double().clamp_min(0).float(), rtol=0, atol=0)
    torch.testing.assert_close(z, y, rtol=0, atol=0)
    with torch.no_grad(), pytest.raises(ValueError, match="memory='mask' needs a piecewise-linear"):
        fused_act.gelu(x, memory="mask")


# ------------------------------------------------------------------ errors


def test_errors():
    x = torch.randn(10)
    with pytest.raises(ValueError, match="memory='mask' needs a piecewise-linear"):
        fused_act.gelu(x, memory="mask")
    with pytest.raises(ValueError, match="memory='input' is not available"):
        fused_act.relu(x, memory="input")
    with pytest.raises(ValueError, match="memory='output' is not available"):
        fused_act.leaky_relu(x, -0.5, memory="output")
    with pytest.raises(ValueError, match="memory must be one of"):
        fused_act.relu(x, memory="bits")
    with pytest.raises(ValueError, match="memory='mask'"):
        fused_act.nn.SiLU(memory="mask")
    with pytest.raises(RuntimeError, match="activation_mask: gelu cannot keep a 1-bit mask"):
        ops.activation_mask(x, "gelu", [])
    with pytest.raises(RuntimeError, match="activation_mask_backward: tanh cannot keep"):
        ops.activation_mask_backward(x, torch.zeros(2, dtype=torch.uint8), "tanh", [])
    with pytest.raises(RuntimeError, match=r"activation_mask_backward: mask has shape \[3\], expected \[2\]"):
        ops.activation_mask_backward(x, torch.zeros(3, dtype=torch.uint8), "relu", [])
    with pytest.raises(TypeError, match="mask must be uint8"):
        ops.activation_mask_backward(x, torch.zeros(2), "relu", [])
    with pytest.raises(ValueError, match="min_val cannot be greater"):
        ops.activation_mask(x, "hardtanh", [1.0, 0.0])


def test_modes_listed():
    assert fused_act.memory_modes("relu") == ("auto", "mask", "output")
    assert fused_act.memory_modes("hardsigmoid") == ("auto", "mask", "input")
    assert fused_act.memory_modes("leaky_relu", negative_slope=-0.5) == ("auto", "mask", "input")
    assert fused_act.memory_modes("gelu") == ("auto", "input")
    assert fused_act.memory_modes("identity") == ("auto", "output", "input")
    assert "memory='mask'" in repr(fused_act.nn.ReLU(memory="mask"))


@pytest.mark.parametrize("isa", ISAS)
def test_every_cpu_instruction_set(isa):
    """The mask loop is built per instruction set too; force each one in a fresh process."""
    script = r"""
import torch, fused_act, sys
for name in ["relu", "leaky_relu", "hardtanh", "relu6", "hardsigmoid"]:
    for dtype in [torch.float32, torch.float64, torch.float16, torch.bfloat16]:
        x = (torch.randn(1003, dtype=torch.float64) * 4).to(dtype)
        x[::7] = 0
        g = torch.randn(1003, dtype=torch.float64).to(dtype)
        a = x.clone().requires_grad_(); ya = fused_act.activation(a, name, memory="mask"); ya.backward(g)
        modes = fused_act.memory_modes(name)
        full = "output" if "output" in modes else "input"
        b = x.clone().requires_grad_(); yb = fused_act.activation(b, name, memory=full); yb.backward(g)
        if not (torch.equal(ya, yb) and torch.equal(a.grad, b.grad)):
            sys.exit(f"{name} {dtype} differs under {fused_act.info()['cpu_isa']}")
print(fused_act.info()["cpu_isa"])
"""
    run_under_isa(isa, script)
