"""``torch.nn``-style modules, generated from the registry.

Names and constructor signatures follow ``torch.nn`` where torch has the activation
(``ReLU(inplace=False)``, ``LeakyReLU(negative_slope=0.01, inplace=False)``,
``GELU(approximate='none')``, ``Hardtanh(min_val=-1.0, max_val=1.0, inplace=False)``, ...), with
the same attribute names, so code that reads ``module.negative_slope`` keeps working. Added:
``RescaledSigmoid()``, ``LeakyTanh(a=0.25)``, ``SquaredReLU()`` and ``Activation(name, **params)``;
and on every module a keyword-only ``memory="auto"`` choosing what backward keeps
(fused_act/memory.py). ``Softmax(dim=None)`` and ``LogSoftmax(dim=None)`` are not elementwise
and not in the registry.
Modules hold no parameters or buffers: swapping them leaves ``state_dict`` unchanged.

The fused layers (``Linear`` and ``Conv2d`` with an ``activation``, ``BiasAct``, ``GLU``,
``SwiGLU``, ``GeGLU``, ``ReGLU``) are defined in ``fused_act/layers.py`` and exported here.
"""

from __future__ import annotations

import inspect
import warnings

import torch
from torch import nn

from . import functional as _functional
from . import layers
from .layers import GLU, BatchNorm1d, BatchNorm2d, BatchNorm3d, BiasAct, Conv2d, GeGLU, Linear, ReGLU, SwiGLU  # noqa: F401
from .memory import memory_modes, resolve_memory
from .ops import activation_op
from .registry import ACTIVATIONS, get, kernel_args

__all__ = ["Activation", "LogSoftmax", "Softmax", *layers.__all__, *(s.module for s in ACTIVATIONS.values())]


class Activation(nn.Module):
    """Any registered activation by name: ``Activation("leaky_tanh", a=0.1)``."""

    def __init__(self, name: str, inplace: bool = False, *, memory: str = "auto", **params):
        super().__init__()
        self.name = name
        self.params = get(name).resolve(params)
        self.inplace = inplace
        self.memory = memory
        memory_modes_check(name, memory, self.params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, params = kernel_args(self.name, *self.params.values())
        return activation_op(x, kernel, params, self.inplace, self.memory)

    def extra_repr(self) -> str:
        parts = [repr(self.name)] + [f"{k}={v!r}" for k, v in self.params.items()]
        if self.inplace:
            parts.append("inplace=True")
        if self.memory != "auto":
            parts.append(f"memory={self.memory!r}")
        return ", ".join(parts)


def memory_modes_check(name: str, memory: str, params: dict) -> None:
    """Raises at construction, not at the first forward, for a memory mode this activation
    does not have."""
    if memory not in memory_modes(name, **params):
        kernel, args = get(name).kernel_args(params)
        resolve_memory(kernel, tuple(args), memory)  # raises with the reason


def _make(spec):
    names = list(spec.params)
    takes_inplace = spec.torch_inplace or spec.name == "identity"

    def __init__(self, *args, memory: str = "auto", **kwargs):
        nn.Module.__init__(self)
        if spec.name == "identity":  # nn.Identity accepts and ignores any arguments
            args, kwargs = (), {}
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        self.name = spec.name
        for n in names:
            setattr(self, n, bound.arguments[n])
        self.inplace = bound.arguments.get("inplace", False)
        self.memory = memory
        memory_modes_check(spec.name, memory, {n: getattr(self, n) for n in names})

    # Parameters are read at every call (torch's modules allow `m.negative_slope = 0.2`) and handed
    # to the functional's builtin, which caches their kernel arguments in C: a forward is this frame
    # plus one C call. LeakyReLU(0.2) on 16 floats, against torch.nn.LeakyReLU's 2.1-2.5 us: 3.48
    # us through registry.kernel_args and activation_op (two more Python frames), 2.14 with the
    # values as a list and the keywords always passed, 1.7 as here (a single parameter read
    # directly, keywords only when set; Intel Xeon, 2026-12-07). (operator.attrgetter is as fast,
    # but Dynamo cannot trace it.)
    entry = getattr(_functional, spec.name)  # a builtin (identity's: its Python function)
    if not names:

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.inplace or self.memory != "auto":
                return entry(x, inplace=self.inplace, memory=self.memory)
            return entry(x)
    elif len(names) == 1:
        (n0,) = names

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self.inplace or self.memory != "auto":
                return entry(x, getattr(self, n0), inplace=self.inplace, memory=self.memory)
            return entry(x, getattr(self, n0))
    else:

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            values = [getattr(self, n) for n in names]
            if self.inplace or self.memory != "auto":
                return entry(x, *values, inplace=self.inplace, memory=self.memory)
            return entry(x, *values)

    def extra_repr(self) -> str:
        parts = [f"{n}={getattr(self, n)!r}" for n in names]
        if self.inplace:
            parts.append("inplace=True")
        if self.memory != "auto":
            parts.append(f"memory={self.memory!r}")
        return ", ".join(parts)

    P = inspect.Parameter
    sig = inspect.Signature(
        [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec.params.items()]
        + ([P("inplace", P.POSITIONAL_OR_KEYWORD, default=False)] if takes_inplace else [])
    )
    __init__.__signature__ = inspect.Signature(
        [P("self", P.POSITIONAL_ONLY), *sig.parameters.values(), P("memory", P.KEYWORD_ONLY, default="auto")]
    )
    doc = f"Fused {spec.name}" + (f", a drop-in for torch.nn.{spec.torch_module}" if spec.torch_module else "")
    return type(
        spec.module,
        (nn.Module,),
        {
            "__init__": __init__,
            "forward": forward,
            "extra_repr": extra_repr,
            "__doc__": doc + ".",
            "__module__": __name__,
            "spec": spec,
        },
    )


for _spec in ACTIVATIONS.values():
    globals()[_spec.module] = _make(_spec)
del _spec


def _legacy_dim(name: str, ndim: int) -> int:
    """torch.nn.Softmax(dim=None)'s implicit choice, with torch's deprecation warning."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


class Softmax(nn.Module):
    """Fused softmax, a drop-in for torch.nn.Softmax (dim=None picks torch's legacy dim, with its warning)."""

    _op = "softmax"
    _log = False

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dim = self.dim if self.dim is not None else _legacy_dim(self._op, x.dim())
        return _functional.log_softmax(x, dim) if self._log else _functional.softmax(x, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Softmax):
    """Fused log_softmax, a drop-in for torch.nn.LogSoftmax."""

    _op = "log_softmax"
    _log = True
