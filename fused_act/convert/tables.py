"""The registry's torch <-> fused_act lookups: torch.nn modules, torch functions and Tensor
methods with a fused equivalent, the activation-family ones without, and the fused modules and
functions themselves."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .. import functional as _ffn
from .. import nn as _fnn
from ..registry import ACTIVATIONS, ActivationSpec, get

# torch.nn class -> spec. Exact types only: nn.ReLU6 subclasses nn.Hardtanh, and a user's
# subclass of nn.ReLU may override forward, so isinstance would convert the wrong thing.
_TORCH_MODULES: dict[type, ActivationSpec] = {
    getattr(nn, s.torch_module): s for s in ACTIVATIONS.values() if s.torch_module
}
_FUSED_MODULES: dict[type, ActivationSpec] = {getattr(_fnn, s.module): s for s in ACTIVATIONS.values()}

# torch.nn activation-family modules with no fused equivalent, reported rather than ignored.
_NO_EQUIVALENT: dict[type, str] = {
    nn.PReLU: "learnable slope (a parameter); no fused kernel",
    nn.RReLU: "random slope in training; no fused kernel",
    nn.Threshold: "no fused kernel",
    nn.Tanhshrink: "no fused kernel",
    nn.Softshrink: "no fused kernel",
    nn.Hardshrink: "no fused kernel",
    nn.GLU: "not elementwise (gates one half of a dimension with the other)",
    nn.Softmax: "not elementwise (normalises over a dimension)",
    nn.Softmin: "not elementwise (normalises over a dimension)",
    nn.LogSoftmax: "not elementwise (normalises over a dimension)",
    nn.Softmax2d: "not elementwise (normalises over a dimension)",
}


def _fused_spec(m: nn.Module) -> ActivationSpec | None:
    """The spec of a fused_act activation module, else None."""
    return _FUSED_MODULES.get(type(m)) or (get(m.name) if type(m) is _fnn.Activation else None)


def _fused_params(m: nn.Module, spec: ActivationSpec) -> dict:
    if isinstance(m, _fnn.Activation):
        return dict(m.params)
    return {n: getattr(m, n) for n in spec.params}


# torch function -> (activation, its torch parameter names, whether it is the in-place variant).
# Used for function-valued attributes (convert) and call_function nodes (convert_functional).


def _torch_function(dotted: str):
    """``"torch.x"`` / ``"F.x"`` -> the function, or None on a torch version without it."""
    module, _, name = dotted.partition(".")
    return getattr({"torch": torch, "F": F}[module], name, None)


def _functional_table() -> dict[Callable, tuple[str, tuple[str, ...], bool]]:
    """From the registry's ``torch_functions`` / ``torch_inplace_functions``."""
    table = {}
    for spec in ACTIVATIONS.values():
        for names, inplace_variant in ((spec.torch_functions, False), (spec.torch_inplace_functions, True)):
            for fn in filter(None, map(_torch_function, names)):
                table[fn] = (spec.name, tuple(spec.params), inplace_variant)
    return table


_FUNCTIONS = _functional_table()
# Tensor methods (call_method nodes): name -> (activation, in-place variant)
_METHODS = {
    method: (spec.name, inplace_variant)
    for spec in ACTIVATIONS.values()
    for methods, inplace_variant in ((spec.torch_methods, False), (spec.torch_inplace_methods, True))
    for method in methods
}
# Activation-family functions with no fused kernel: reported by convert_functional.
_NO_EQUIVALENT_FUNCTIONS = {
    F.prelu: "learnable slope; no fused kernel",
    F.rrelu: "random slope in training; no fused kernel",
    F.glu: "not elementwise",
    F.threshold: "no fused kernel",
    F.tanhshrink: "no fused kernel",
    F.softshrink: "no fused kernel",
    F.hardshrink: "no fused kernel",
}
_FUSED_FUNCTIONS = {getattr(_ffn, n): n for n in ACTIVATIONS} | {_ffn.activation: None}


def _hashable(x) -> bool:
    try:
        hash(x)
        return True
    except TypeError:
        return False
