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


@pytest.mark.parametrize("name", [n for n, s in ACTIVATIONS.items() if s.params and s.torch_module])
def test_module_parameters_are_read_at_every_call(name):
    """A module hands its parameters to the functional's builtin, which caches kernel arguments
    per value: changing an attribute after construction (as torch's modules allow) must take
    effect, and the earlier value must still be right after it."""
    spec = ACTIVATIONS[name]
    m = getattr(fused_act.nn, spec.module)()
    t = getattr(tnn, spec.torch_module)()
    x = torch.randn(257, dtype=torch.float64) * 4
    for extra in [*spec.test_params, dict(spec.params)]:
        for p, v in extra.items():
            setattr(m, p, v)
            setattr(t, p, v)
        torch.testing.assert_close(m(x), t(x), msg=f"{name} {extra}")


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


# The library code that may name an activation, and why: the op contract of identity (nn.Identity
# returns its input), the issues' benchmark targets and the papers' training protocols. Any other
# table keyed by, or branch on, an activation name is a per-activation fact outside the functor and
# the registry, which a new activation would silently miss.
NAMED_ON_PURPOSE = {
    ("fused_act/nn.py", "identity"): "nn.Identity ignores its arguments",
    ("fused_act/ops/activation.py", "identity"): "identity returns x itself, as nn.Identity",
    ("fused_act/functional.py", "identity"): "returning x itself, it keeps its Python function",
    ("fused_act/convert/modules.py", "identity"): "a folded layer without an activation",
    ("train/models.py", "identity"): "the torch baseline of identity is nn.Identity",
    ("bench/targets.py", "rescaled_sigmoid"): "issue #2's target for it",
    ("bench/fit_rational.py", "tanh"): "the math function whose rational form it fits (math.h)",
    ("bench/op_boundary.py", "tanh"): "torch's nn.GELU(approximate='tanh'), behind the op boundary",
    ("train/experiments.py", "leaky_relu"): "the paper's slope",
    ("train/experiments.py", "leaky_tanh"): "the paper's slope",
}


def _names_used_as_keys_or_in_branches(tree, names):
    """Activation names that key a dict literal, index a mapping, or are compared with."""
    import ast

    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            consts = [k for k in node.keys if k is not None]
        elif isinstance(node, ast.Compare):
            consts = list(ast.walk(node))
        elif isinstance(node, ast.Subscript):
            consts = [node.slice]
        else:
            continue
        for c in consts:
            if isinstance(c, ast.Constant) and c.value in names:
                yield c.value


def test_per_activation_facts_live_only_in_the_registry():
    """Adding an activation touches three places (functor, list.h, registry): no library module
    (fused_act/, bench/, train/) keeps a table of activations or branches on one's name, except the
    few in NAMED_ON_PURPOSE. Samples of activations to benchmark or train are lists, which this
    allows; facts about an activation are dict keys, lookups and comparisons, which it does not."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = set()
    for package in ("fused_act", "bench", "train"):
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            if rel == "fused_act/registry.py":
                continue
            tree = ast.parse(path.read_text(), filename=rel)
            found |= {(rel, name) for name in _names_used_as_keys_or_in_branches(tree, set(ACTIVATIONS))}
    assert found - NAMED_ON_PURPOSE.keys() == set(), "per-activation facts outside the registry"
    assert NAMED_ON_PURPOSE.keys() - found == set(), "stale entries in NAMED_ON_PURPOSE"


def test_functional_parameter_cache_follows_the_values():
    """The functional API caches kernel arguments per (name, parameters): a new value, a tensor
    changed in place and a rejected value must each still act as uncached."""
    x = torch.randn(256, dtype=torch.float64)
    for slope in (0.2, 0.3, 0.2):
        torch.testing.assert_close(
            fused_act.activation(x, "leaky_relu", negative_slope=slope), torch.nn.functional.leaky_relu(x, slope)
        )
        torch.testing.assert_close(fused_act.leaky_relu(x, slope), torch.nn.functional.leaky_relu(x, slope))
    t = torch.tensor(0.2, dtype=torch.float64)
    first = fused_act.activation(x, "leaky_relu", negative_slope=t)
    t.fill_(0.5)
    torch.testing.assert_close(fused_act.activation(x, "leaky_relu", negative_slope=t), x.where(x > 0, 0.5 * x))
    assert not torch.equal(first, x.where(x > 0, 0.5 * x))
    for _ in range(2):
        with pytest.raises(ValueError, match="approximate"):
            fused_act.activation(x, "gelu", approximate="erf")
