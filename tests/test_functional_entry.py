"""fused_act.<name> is a builtin (csrc/python_functional.cpp): ``f(x, *params)`` on a plain tensor
with plain parameters runs in C (the parameters resolved once by the registry, then cached), every
other call goes to the Python function. So is fused_act.activation, whose ``activation(x, name,
**params)`` takes the named functional's C path. Both paths must agree with torch's reference,
and the builtin must behave as the Python function did for torch.compile, torch.export, fx,
pickle, subclasses and errors."""

from __future__ import annotations

import io
import pickle
import types

import pytest
import torch
from conftest import BWD_TOL, CASE_IDS, CASES, FWD_TOL, assert_close, sample_input

import fused_act
from fused_act.registry import ACTIVATIONS

WITH_ENTRY = [n for n in ACTIVATIONS if isinstance(getattr(fused_act, n), types.BuiltinFunctionType)]


def test_every_functional_but_identity_is_a_builtin():
    assert sorted(WITH_ENTRY) == sorted(set(ACTIVATIONS) - {"identity"})
    assert isinstance(fused_act.activation, types.BuiltinFunctionType)
    x = torch.randn(5)
    assert fused_act.identity(x) is x and fused_act.activation(x, "identity") is x


class Marked(torch.Tensor):
    """A subclass: the builtin must hand it to the Python path (torch.Tensor's exact type only)."""


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", WITH_ENTRY)
def test_fast_path_and_fallback_match_reference(name, dtype):
    """f(x) and activation(x, name) (C), f(x, **defaults) and activation(x, name, **defaults)
    (Python, keyword) and f on a subclass (Python) against the float64 reference, forward and
    backward; all run one kernel, so they agree bitwise."""
    spec = ACTIVATIONS[name]
    fn = getattr(fused_act, name)
    x = sample_input(name, spec.params, dtype, "cpu", n=1031)
    g = torch.randn(x.shape, dtype=torch.float64).to(dtype)
    x64 = x.double().requires_grad_()
    y64 = spec.reference(x64, **spec.params)
    (d64,) = torch.autograd.grad(y64, x64, g.double())
    results = []
    calls = (
        lambda t: fn(t),
        lambda t: fused_act.activation(t, name),
        lambda t: fn(t, **spec.params),
        lambda t: fused_act.activation(t, name, **spec.params),
        lambda t: fn(t.as_subclass(Marked)),
    )
    for call in calls:
        leaf = x.clone().requires_grad_()
        y = call(leaf)
        (dx,) = torch.autograd.grad(y, leaf, g)
        assert_close(y.detach(), y64.detach(), FWD_TOL[dtype], f"{name} forward")
        assert_close(dx, d64, BWD_TOL[dtype], f"{name} backward")
        results.append((y.detach().as_subclass(torch.Tensor), dx))
    for y, dx in results[1:]:
        assert torch.equal(y, results[0][0]) and torch.equal(dx, results[0][1])


MASK_NODE = "fused_act::ActivationMaskBackward"
WITH_PARAMS = [c for c, i in zip(CASES, CASE_IDS) if c[0] in WITH_ENTRY and ACTIVATIONS[c[0]].params]
WITH_PARAMS_IDS = [i for c, i in zip(CASES, CASE_IDS) if c[0] in WITH_ENTRY and ACTIVATIONS[c[0]].params]


@pytest.mark.parametrize("case", WITH_PARAMS, ids=WITH_PARAMS_IDS)
def test_parameters_given_match_reference_in_every_form(case):
    """f(x, *values), f(x, **params), activation(x, name, **params) (C, twice: the second from the
    cache) and f on a subclass (Python) against the float64 reference, for every memory mode these
    parameters allow, forward and backward; all run one kernel, so they agree bitwise."""
    name, params = case
    spec = ACTIVATIONS[name]
    fn = getattr(fused_act, name)
    x = sample_input(name, params, torch.float32, "cpu", n=1031)
    g = torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1  # |g| <= 1: BWD_TOL's unit
    x64 = x.double().requires_grad_()
    y64 = spec.reference(x64, **params)
    (d64,) = torch.autograd.grad(y64, x64, g.double())
    values = list(params.values())
    for memory in fused_act.memory.memory_modes(name, **params):
        calls = (
            lambda t: fn(t, *values, memory=memory),
            lambda t: fn(t, **params, memory=memory),
            lambda t: fused_act.activation(t, name, **params, memory=memory),
            lambda t: fused_act.activation(t, name, memory=memory, **params),
            lambda t: fn(t.as_subclass(Marked), *values, memory=memory),
        )
        results = []
        for call in calls:
            leaf = x.clone().requires_grad_()
            y = call(leaf)
            (dx,) = torch.autograd.grad(y, leaf, g)
            assert_close(y.detach(), y64.detach(), FWD_TOL[torch.float32], f"{name} {params} {memory} forward")
            assert_close(dx, d64, BWD_TOL[torch.float32], f"{name} {params} {memory} backward")
            results.append((y.detach().as_subclass(torch.Tensor), dx))
        for y, dx in results[1:]:
            assert torch.equal(y, results[0][0]) and torch.equal(dx, results[0][1])


def test_cached_parameters_never_stand_in_for_others():
    """The cache keys on the parameters as given: values that compare equal as keys but not as
    parameters (-0.0 and 0.0), or a value given positionally that names a parameter, must not hit
    an earlier call's entry."""
    x = torch.tensor([-2.0, -0.5, 0.0, 1.5])
    for low in (0.0, -0.0, 0.0):  # 0.0 cached first; -0.0 then needs its own kernel arguments
        y = fused_act.hardtanh(x, low, 1.0)
        assert torch.equal(y, torch.nn.functional.hardtanh(x, low, 1.0)), low
        assert bool(y[x < 0].signbit().all()) == (str(low) == "-0.0"), (low, y)  # clamped to low itself
        m = fused_act.nn.Hardtanh(low, 1.0)  # the modules' cache (registry.kernel_args)
        assert torch.equal(m(x).signbit(), y.signbit()), low
    assert torch.equal(fused_act.leaky_relu(x, 1), torch.nn.functional.leaky_relu(x, 1.0))  # int as float
    fused_act.hardtanh(x, min_val=-1.0, max_val=2.0)
    with pytest.raises(ValueError):
        fused_act.hardtanh(x, "min_val", 2.0)  # not the cached (min_val=, max_val=) call
    for k in range(100):  # past the per-entry cache bound: the rest takes the Python path
        s = k / 50 - 1
        torch.testing.assert_close(fused_act.elu(x, s), torch.nn.functional.elu(x, s), rtol=1e-6, atol=1e-7)


def test_parameter_errors_come_from_the_python_path_every_time():
    x = torch.randn(8)
    for _ in range(2):  # a call that raised must not leave a cache entry behind
        with pytest.raises(ValueError, match="min_val cannot be greater than max_val"):
            fused_act.hardtanh(x, 2.0, -2.0)
        with pytest.raises(TypeError, match="multiple values for 'alpha'"):
            fused_act.elu(x, 0.5, alpha=0.5)
        with pytest.raises(TypeError, match=r"fused_act.elu: unexpected parameter\(s\) \['beta'\]"):
            fused_act.elu(x, beta=1.0)
        with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
            fused_act.activation(x, "gelu", approximate="bogus")
        with pytest.raises(ValueError, match="memory='output' is not available"):
            fused_act.leaky_relu(x.requires_grad_(), -0.5, memory="output")
    t = torch.tensor(0.2)  # a tensor parameter: the Python path, as before
    torch.testing.assert_close(fused_act.leaky_relu(x, t), torch.nn.functional.leaky_relu(x, 0.2))


@pytest.mark.parametrize("by_name", [False, True])
@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("name", WITH_ENTRY)
def test_keyword_calls_match_the_python_path(name, inplace, by_name):
    """f(x, inplace=..., memory=...) for every mode the activation allows runs in C: against the
    float64 reference, bitwise equal to the Python function's result (a subclass takes it), the
    mask kept exactly where memory="mask" asks, and x itself returned in place."""
    spec = ACTIVATIONS[name]
    fn = (lambda t, **kw: fused_act.activation(t, name, **kw)) if by_name else getattr(fused_act, name)
    x = sample_input(name, spec.params, torch.float32, "cpu", n=1031)
    g = torch.randn(x.shape)
    x64 = x.double().requires_grad_()
    y64 = spec.reference(x64, **spec.params)
    (d64,) = torch.autograd.grad(y64, x64, g.double())
    for memory in fused_act.memory.memory_modes(name):
        results = []
        for plain in (True, False):
            leaf = x.clone().requires_grad_()
            t = leaf.clone() if inplace else leaf  # in place needs a non-leaf
            t = t if plain else t.as_subclass(Marked)  # (an alias: in place, a view's grad_fn)
            y = fn(t, inplace=inplace, memory=memory)
            assert (y is t) == inplace, (name, memory)
            if plain:
                assert (y.grad_fn.name() == MASK_NODE) == (memory == "mask"), (name, memory, y.grad_fn.name())
            (dx,) = torch.autograd.grad(y, leaf, g)
            assert_close(y.detach(), y64.detach(), FWD_TOL[torch.float32], f"{name} {memory} forward")
            assert_close(dx, d64, BWD_TOL[torch.float32], f"{name} {memory} backward")
            results.append((y.detach().as_subclass(torch.Tensor), dx))
        assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])


def test_keyword_calls_follow_auto_prefers_mask(monkeypatch):
    leaf = torch.randn(64, requires_grad=True)
    for flag in (True, False):
        monkeypatch.setattr(fused_act.memory, "AUTO_PREFERS_MASK", flag)
        for y in (fused_act.relu(leaf), fused_act.relu(leaf, memory="auto")):
            assert (y.grad_fn.name() == MASK_NODE) == flag
        assert fused_act.sigmoid(leaf).grad_fn.name() != MASK_NODE  # not maskable


def test_keyword_calls_without_grad_run_the_plain_kernels():
    x = torch.randn(64)
    y = fused_act.relu(x, memory="mask")
    assert y.grad_fn is None and torch.equal(y, x.clamp_min(0))
    with torch.no_grad():
        z = x.clone().requires_grad_()
        assert fused_act.relu(z, inplace=True, memory="mask") is z and torch.equal(z, x.clamp_min(0))


def test_keyword_errors_come_from_the_python_path():
    """(Modes an activation rejects: test_memory_modes.py's test_errors, through this entry too.)"""
    x = torch.randn(8)
    with pytest.raises(TypeError, match=r"fused_act.relu: unexpected parameter\(s\) \['inplce'\]"):
        fused_act.relu(x, inplce=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad"):
        fused_act.relu(x.requires_grad_(), inplace=True, memory="mask")
    y = torch.randn(8)
    assert fused_act.relu(y, inplace=1) is y  # not a bool: Python's truthiness, as before


def test_other_calls_go_to_python():
    x = torch.randn(64) * 3
    torch.testing.assert_close(fused_act.elu(x, 0.5), torch.nn.functional.elu(x, 0.5))
    torch.testing.assert_close(fused_act.hardtanh(x, max_val=2.0), torch.nn.functional.hardtanh(x, max_val=2.0))
    torch.testing.assert_close(fused_act.gelu(x, approximate="tanh"), torch.nn.functional.gelu(x, approximate="tanh"))
    y = x.clone()
    assert fused_act.relu(y, inplace=True) is y and torch.equal(y, x.clamp_min(0))
    leaf = x.clone().requires_grad_()
    fused_act.relu(leaf, memory="mask").sum().backward()
    torch.testing.assert_close(leaf.grad, (x > 0).float())


def test_errors_name_the_op():
    with pytest.raises(TypeError, match="fused_act.relu: expected a floating-point tensor"):
        fused_act.relu(torch.arange(4))
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        fused_act.relu()
    with pytest.raises(TypeError, match=r"fused_act.elu\(\) takes at most 1 parameter"):
        fused_act.elu(torch.randn(3), 1.0, 2.0)
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor'"):
        fused_act.sigmoid("x")
    with pytest.raises(TypeError, match="fused_act.relu: expected a floating-point tensor"):
        fused_act.activation(torch.arange(4), "relu")
    with pytest.raises(ValueError, match="fused_act: unknown activation 'relu7'"):
        fused_act.activation(torch.randn(3), "relu7")
    with pytest.raises(TypeError, match=r"fused_act.elu: unexpected parameter\(s\) \['beta'\]"):
        fused_act.activation(torch.randn(3), "elu", beta=1.0)


class HoldsFunctional(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.act = fused_act.silu

    def forward(self, x):
        return self.act(x) + fused_act.tanh(x) + fused_act.activation(x, "relu")


def test_pickles_by_name():
    assert pickle.loads(pickle.dumps(fused_act.gelu)) is fused_act.gelu
    assert pickle.loads(pickle.dumps(fused_act.activation)) is fused_act.activation
    buf = io.BytesIO()
    torch.save(HoldsFunctional(), buf)
    buf.seek(0)
    m = torch.load(buf, weights_only=False)
    assert m.act is fused_act.silu


def test_compile_export_and_fx_see_the_registered_op():
    torch._dynamo.reset()
    m = HoldsFunctional()
    x = torch.randn(32, requires_grad=True)
    want = torch.nn.functional.silu(x) + torch.tanh(x) + torch.relu(x)
    y = torch.compile(m, fullgraph=True)(x)
    torch.testing.assert_close(y, want)
    y.sum().backward()
    assert x.grad is not None
    for strict in (True, False):
        ep = torch.export.export(m, (x.detach(),), strict=strict)
        assert str(ep.graph).count("fused_act.activation") == 3, ep.graph
        torch.testing.assert_close(ep.module()(x.detach()), want.detach())
    gm = torch.fx.symbolic_trace(m)
    assert sum(n.target is torch.ops.fused_act.activation for n in gm.graph.nodes) == 3, gm.graph
    torch.testing.assert_close(gm(x.detach()), want.detach())
