"""The C++ list (csrc/activations/list.h) and the Python registry agree, and everything
generated from the registry exists with torch's names and signatures."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn as tnn

import fused_act
from fused_act import _C
from fused_act.registry import ACTIVATIONS


def test_cpp_and_python_lists_agree():
    cpp = {name: params for name, params, _, _ in _C.activations()}
    python = {}
    for spec in ACTIVATIONS.values():
        if spec.name == "gelu":  # approximate selects one of two kernels
            for approximate in ("none", "tanh"):
                kernel, args = spec.kernel_args({"approximate": approximate})
                python[kernel] = []
            continue
        kernel, args = spec.kernel_args({})
        python[kernel] = list(spec.params)
        assert len(args) == len(spec.params)
    assert python == cpp


def test_saved_kinds_are_consistent():
    """What the functor declares, resolved with default parameters."""
    for name, _params, saved, _ in _C.activations():
        assert saved in ("none", "input", "output", "either"), name
        spec = ACTIVATIONS.get(name) or ACTIVATIONS["gelu"]
        kernel_params = [float(v) for v in spec.params.values()] if name in ACTIVATIONS and name != "gelu" else []
        resolved = _C.saved_for(name, kernel_params)
        assert resolved in ("none", "input", "output")
        if saved != "either":
            assert resolved == saved


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_functional_exists_with_torch_signature(name):
    spec = ACTIVATIONS[name]
    fn = getattr(fused_act, name)
    sig = inspect.signature(fn)
    assert list(sig.parameters) == ["x", *spec.params, "inplace", "memory"]
    for p, default in spec.params.items():
        assert sig.parameters[p].default == default


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_module_matches_torch_module(name):
    spec = ACTIVATIONS[name]
    cls = getattr(fused_act.nn, spec.module)
    assert cls.spec is spec
    m = cls()
    assert list(m.parameters()) == [] and m.state_dict() == {}
    if spec.torch_module is None:
        return
    tcls = getattr(tnn, spec.torch_module)
    # memory= is ours (keyword-only, fused_act/memory.py); the rest must be torch's
    ours = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name not in ("self", "memory")]
    if "__init__" in vars(tcls):  # Sigmoid, Tanh, ... take no arguments
        theirs = [p for p in inspect.signature(tcls.__init__).parameters.values() if p.name != "self"]
        theirs = [p for p in theirs if p.name not in ("min_value", "max_value")]  # deprecated aliases
    else:
        theirs = []
    assert [(p.name, p.default) for p in ours] == [(p.name, p.default) for p in theirs], spec.module
    t = tcls()
    for p in spec.params:
        assert getattr(m, p) == getattr(t, p)
    x = torch.randn(64, dtype=torch.float64)
    torch.testing.assert_close(m(x), t(x))


def test_modules_pass_parameters_and_inplace():
    m = fused_act.nn.Hardtanh(-2.0, 3.0, True)
    assert (m.min_val, m.max_val, m.inplace) == (-2.0, 3.0, True)
    assert "inplace=True" in repr(m)
    x = torch.linspace(-5, 5, 11)
    y = m(x)
    assert y.data_ptr() == x.data_ptr()
    torch.testing.assert_close(y, torch.linspace(-5, 5, 11).clamp(-2, 3))
    g = fused_act.nn.Activation("leaky_tanh", a=0.5)
    z = torch.linspace(-3, 3, 13, dtype=torch.float64)
    torch.testing.assert_close(g(z), torch.where(z >= 0, z.tanh(), 0.5 * z.tanh()))
    assert "leaky_tanh" in repr(g) and "a=0.5" in repr(g)
    assert fused_act.nn.Identity(54, unused="x")(z).equal(z)  # nn.Identity ignores its arguments


def test_info_reports_build():
    info = fused_act.info()
    assert info["torch"] == torch.__version__
    assert info["cpu_isa"] in info["cpu_isas_built"]
    assert "DEFAULT" in info["cpu_isas_built"]
    assert isinstance(info["cuda_kernels_built"], bool)
    assert info["activations"] == list(ACTIVATIONS)


def test_composite_is_counted_from_the_reference():
    """'Composite' (eager runs several ATen ops; the benchmarks' bigger targets) is measured from the
    reference, and the benchmarks take their list from it."""
    from bench.cases import COMPOSITE_ACTS

    assert ACTIVATIONS["softsign"].eager_ops == ("abs", "add", "div")  # F.softsign is x / (1 + |x|)
    assert ACTIVATIONS["gelu"].eager_ops == ("gelu",) and not ACTIVATIONS["gelu"].composite
    assert COMPOSITE_ACTS == [n for n, s in ACTIVATIONS.items() if len(s.eager_ops) > 1]
    assert {"softsign", "rescaled_sigmoid", "leaky_tanh", "squared_relu"} <= set(COMPOSITE_ACTS)
