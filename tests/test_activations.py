"""Every activation x parameter case x dtype x device: forward and backward against torch's
reference composition evaluated in float64, kinks, special values, layouts, in-place,
gradcheck and gradgradcheck."""

from __future__ import annotations

import contextlib
import math

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
    run_under_isa,
    sample_input,
    simulated_cuda,
)

import fused_act
from fused_act.registry import ACTIVATIONS


def reference(name, params, x64):
    return ACTIVATIONS[name].reference(x64, **params)


def ours_and_reference(name, params, x, grad_out=None):
    """(y, dx) from fused_act in x's dtype and (y, dx) from the float64 reference."""
    xs = x.detach().clone().requires_grad_()
    y = fused_act.activation(xs, name, **params)
    x64 = x.detach().double().requires_grad_()
    r = reference(name, params, x64)
    if grad_out is None:  # |grad| <= 1, so BWD_TOL's atol is per unit of incoming gradient
        grad_out = torch.rand_like(y) * 2 - 1
    (dx,) = torch.autograd.grad(y, xs, grad_out)
    (dr,) = torch.autograd.grad(r, x64, grad_out.double())
    return y, dx, r.detach(), dr


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_forward_backward_match_float64_reference(case, dtype, device):
    name, params = case
    x = sample_input(name, params, dtype, device)
    y, dx, r, dr = ours_and_reference(name, params, x)
    assert y.dtype == dtype and dx.dtype == dtype
    assert_close(y, r, FWD_TOL[dtype], f"{name}{params} forward {dtype}")
    assert_close(dx, dr, BWD_TOL[dtype], f"{name}{params} backward {dtype}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kinks_follow_torch_derivative_convention(case, dtype, device):
    """At the exact kink points (0, min_val, max_val, +-3, threshold/beta) the derivative must
    be the one torch's autograd gives, not the other side's."""
    name, params = case
    kinks = ACTIVATIONS[name].kinks(**params)
    if not kinks:
        pytest.skip("no kinks")
    x = torch.tensor(kinks + [-0.0], dtype=dtype, device=device)
    y, dx, r, dr = ours_and_reference(name, params, x, torch.ones_like(x))
    assert_close(y, r, FWD_TOL[dtype], f"{name} at kinks {kinks}")
    assert_close(dx, dr, BWD_TOL[dtype], f"{name}' at kinks {kinks}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("beta, threshold", [(1.0, 20.0), (-0.5, 20.0), (2.0, 17.5), (1.0, 100.0)])
def test_softplus_output_form_next_to_the_threshold(beta, threshold, dtype, device):
    """softplus's backward from y answers 1 on the sliver below the threshold where y cannot tell
    the sides apart (csrc/activations/act/softplus.h): in float32 the same as torch, in float64
    within exp(-threshold) of it, and exact away from it. Smaller thresholds keep x."""
    assert fused_act.ops.saved_for("softplus", (beta, threshold)) == "output"
    assert fused_act.ops.saved_for("softplus", (beta, 17.0)) == "input"
    t = threshold / beta
    edge = math.log(math.expm1(threshold)) / beta  # where the soft side's beta*y reaches threshold
    rel = torch.linspace(-1e-6, 1e-6, 201, dtype=torch.float64)
    x = torch.cat([t * (1 + rel), torch.tensor([edge, t, (edge + t) / 2, t - 1 / beta, t + 1 / beta])])
    y, dx, r, dr = ours_and_reference("softplus", {"beta": beta, "threshold": threshold}, x.to(dtype).to(device))
    torch.testing.assert_close(y.double(), r.to(dtype).double(), atol=0, rtol=FWD_TOL[dtype][1])
    if dtype == torch.float32:
        assert_close(dx, dr, BWD_TOL[dtype], "softplus' next to the threshold")
    else:
        err = (dx - dr).abs() / dr.abs().clamp(min=1e-300)
        assert err.max() <= math.exp(-threshold) * (1 + 1e-6) + 1e-12, err.max()
        away = ((x - t).abs() > abs(t - edge) * 2).to(device)
        assert err[away].max() <= 1e-12


SPECIAL = [
    math.inf,
    -math.inf,
    math.nan,
    -0.0,
    0.0,
    1e30,
    -1e30,
    1e-30,
    -1e-30,
    1e-42,
    88.0,
    -88.0,
    104.0,
    -104.0,
    20.0,
    20.5,
    -20.5,
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_special_values(case, dtype, device):
    """inf, nan, signed zero, huge, tiny and denormal inputs give torch's float64 values
    (rounded to the dtype, so overflow is inf): NaN where torch gives NaN, and the limits
    where it does not. Not compared: the derivative at a NaN input (the forward is NaN either
    way, and torch's own vector and scalar CPU paths disagree there for hardtanh/hardsigmoid)."""
    name, params = case
    x = torch.tensor(SPECIAL, dtype=dtype, device=device)
    y, dx, r, dr = ours_and_reference(name, params, x, torch.ones_like(x))
    nan_in = x.isnan()
    assert y[nan_in].isnan().all(), f"{name}(nan) must be nan"
    assert_close(y, r.to(dtype), FWD_TOL[dtype], f"{name}{params} forward at {SPECIAL}")
    assert_close(dx[~nan_in], dr.to(dtype)[~nan_in], BWD_TOL[dtype], f"{name}{params} backward at {SPECIAL}")


FLAT_POINTS = [-8.0, -5.0, -3.5, -1.5, 0.0, 3.5, 8.0, 30.0]


def _backward_paths(name, x, g):
    """d(loss)/dx for loss = <g, f(x)> through each fused path that can run f's backward."""
    spec = ACTIVATIONS[name]

    def grad(fn):
        xr = x.clone().requires_grad_()
        (d,) = torch.autograd.grad(fn(xr), xr, g)
        return d

    paths = {
        "plain": grad(lambda t: fused_act.activation(t, name)),
        "bias_act": grad(lambda t: fused_act.bias_act(t.view(1, -1), torch.zeros_like(t), name).view(-1)),
        "gated": grad(lambda t: fused_act.gated(t, torch.ones_like(t), name)),
    }
    if "mask" in fused_act.memory_modes(name, **spec.params):
        paths["mask"] = grad(lambda t: fused_act.activation(t, name, memory="mask"))
    return paths


@pytest.mark.parametrize("simulated", [False, True], ids=["kernel", "cuda_thread_body"])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_non_finite_gradient_where_the_derivative_is_zero(name, device, simulated):
    """Where f' is exactly 0, an inf or NaN gradient gives what torch's composition gives: 0
    for the piecewise-linear ones, whose backward kernels select 0 there (a dead ReLU stops it),
    NaN where torch multiplies. Plain, mask, bias_act and gated backward, CPU kernels and the
    CUDA thread bodies (simulated), and the GPU where there is one."""
    if simulated and device != "cpu":
        pytest.skip("the simulation runs on CPU tensors")
    spec = ACTIVATIONS[name]
    x = torch.tensor(FLAT_POINTS, device=device)
    x64 = x.double().requires_grad_()
    (d64,) = torch.autograd.grad(spec.reference(x64, **spec.params).sum(), x64)
    flat = d64 == 0
    if not flat.any():
        pytest.skip(f"{name}: f' is nowhere 0 at {FLAT_POINTS}")
    for value in (math.inf, math.nan):
        g = torch.full_like(x, value)
        xr = x.clone().requires_grad_()
        (want,) = torch.autograd.grad(spec.reference(xr, **spec.params), xr, g)
        with simulated_cuda(64) if simulated else contextlib.nullcontext():
            paths = _backward_paths(name, x, g)
        for path, got in paths.items():
            torch.testing.assert_close(
                got[flat], want[flat], equal_nan=True, msg=lambda m: f"{name} {path}, grad {value}: {m}"
            )


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gradcheck_and_gradgradcheck(case):
    name, params = case
    x = sample_input(name, params, torch.float64, "cpu", n=24, seed=1).requires_grad_()
    fn = lambda t: fused_act.activation(t, name, **params)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5)
    assert torch.autograd.gradgradcheck(fn, (x,), eps=1e-6, atol=1e-5)


def test_third_derivative_fails_loudly():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    y = fused_act.tanh(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="third and higher derivatives"):
        gg.sum().backward()


LAYOUTS = {
    "contiguous": lambda x: x,
    "transposed": lambda x: x.transpose(1, 3),
    "channels_last": lambda x: x.contiguous(memory_format=torch.channels_last),
    "sliced": lambda x: x[:, 1:, ::2],
    "offset": lambda x: x.flatten()[3:].view(-1)[: 5 * 6 * 7],  # misaligned start
    "expanded": lambda x: x[:1].expand(4, -1, -1, -1),
}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", ["tanh", "gelu", "leaky_tanh", "hardtanh"])
def test_layouts(name, layout, device):
    """Any strides give torch's values, and dense layouts (channels-last, permuted) keep their
    strides like torch's elementwise ops."""
    base = torch.randn(4, 5, 6, 7, dtype=torch.float64, device=device)
    x = LAYOUTS[layout](base)
    params = ACTIVATIONS[name].params
    y = fused_act.activation(x, name)
    r = reference(name, params, x)
    assert_close(y, r, FWD_TOL[torch.float64], f"{name} {layout}")
    if layout in ("contiguous", "transposed", "channels_last"):
        assert y.stride() == x.stride()
    g = LAYOUTS[layout](torch.randn_like(base)) if layout != "expanded" else torch.randn_like(y)
    xg = x.detach().requires_grad_()
    (dx,) = torch.autograd.grad(fused_act.activation(xg, name), xg, g)
    xr = x.detach().requires_grad_()
    (dr,) = torch.autograd.grad(reference(name, params, xr), xr, g)
    assert_close(dx, dr, BWD_TOL[torch.float64], f"{name}' {layout}")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(0,), (3, 0, 2), ()], ids=["empty", "empty3d", "0-dim"])
def test_empty_and_zero_dim(shape, device):
    x = torch.randn(shape, device=device, requires_grad=True)
    y = fused_act.elu(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y, torch.nn.functional.elu(x))
    y.sum().backward()
    assert x.grad.shape == x.shape


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inplace_matches_out_of_place(case, device):
    """inplace=True writes into x and returns it, and its backward is torch's, also for
    activations whose backward needs the overwritten input."""
    name, params = case
    x0 = sample_input(name, params, torch.float64, device, n=257)
    leaf = x0.clone().requires_grad_()
    x = leaf * 1.0  # a non-leaf, as in a network
    y = fused_act.activation(x, name, inplace=True, **params)
    assert y.data_ptr() == x.data_ptr()
    g = torch.randn_like(x0)
    (dx,) = torch.autograd.grad(y, leaf, g)
    xr = x0.clone().requires_grad_()
    r = reference(name, params, xr)
    (dr,) = torch.autograd.grad(r, xr, g)
    assert_close(y.detach(), r.detach(), FWD_TOL[torch.float64], f"{name} in place")
    assert_close(dx, dr, BWD_TOL[torch.float64], f"{name}' in place")
    # without autograd, in place on a plain tensor
    z = x0.clone()
    fused_act.activation(z, name, inplace=True, **params)
    assert_close(z, r.detach(), FWD_TOL[torch.float64], f"{name} in place, no grad")


def test_inplace_on_strided_view_writes_through():
    base = torch.randn(6, 8, dtype=torch.float64)
    expected = base.clone()
    expected[:, ::2] = torch.tanh(expected[:, ::2])
    fused_act.tanh(base[:, ::2], inplace=True)
    torch.testing.assert_close(base, expected)


def test_inplace_version_counter_catches_stale_saved_tensor():
    """A tensor saved by another op and then overwritten in place: autograd must refuse."""
    leaf = torch.randn(8, requires_grad=True)
    x = leaf * 2
    z = x * x  # saves x
    fused_act.relu(x, inplace=True)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.sum().backward()


@pytest.mark.parametrize("memory", ["auto", "mask"])
def test_inplace_without_a_graph_still_bumps_the_version(memory):
    """x records no graph itself but another op saved it (as torch.relu_, the version counter
    moves): backward must refuse instead of using the overwritten values. Also under no_grad."""
    for context in (contextlib.nullcontext, torch.no_grad):
        w = torch.randn(8, requires_grad=True)
        x = torch.randn(8)
        z = w * x  # saves x for w's gradient
        with context():
            fused_act.relu(x, inplace=True, memory=memory)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()
    with torch.inference_mode():  # inference tensors have no version counter to move
        t = torch.randn(8)
        fused_act.relu(t, inplace=True, memory=memory)
        assert (t >= 0).all()


@pytest.mark.parametrize("isa", ISAS)
def test_every_cpu_instruction_set_matches_reference(isa):
    """The kernels are built once per instruction set and picked at run time; force each one
    in a fresh process and check all activations."""
    script = r"""
import torch, fused_act, sys
from fused_act.registry import ACTIVATIONS
isa = fused_act.info()["cpu_isa"]
bad = []
for dtype, tol in [(torch.float32, 2e-5), (torch.bfloat16, 2e-2), (torch.float64, 1e-7)]:
    x = (torch.randn(10007, dtype=torch.float64) * 4).to(dtype)
    for name, spec in ACTIVATIONS.items():
        xs = x.clone().requires_grad_()
        y = fused_act.activation(xs, name)
        (g,) = torch.autograd.grad(y.sum(), xs)
        x64 = x.double().requires_grad_()
        r = spec.reference(x64, **spec.params)
        (gr,) = torch.autograd.grad(r.sum(), x64)
        for a, b in ((y, r), (g, gr)):
            if not torch.allclose(a.double(), b.detach(), rtol=tol, atol=tol):
                bad.append((name, str(dtype), (a.double() - b).abs().max().item()))
print(isa)
print(bad)
sys.exit(1 if bad else 0)
"""
    run_under_isa(isa, script)
