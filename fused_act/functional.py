"""Functional API, generated from the registry: ``fused_act.<name>(x, *params, inplace=False,
memory="auto")`` for every activation, and ``fused_act.activation(x, name, **params)``.
``memory`` chooses what backward keeps ("auto", "mask", "output", "input"; fused_act/memory.py).

Each function takes its parameters positionally or by keyword with torch's names and
defaults (``elu(x, alpha=1.0)``, ``hardtanh(x, min_val=-1.0, max_val=1.0)``,
``gelu(x, approximate="none")``) and runs the fused kernel for the tensor's device.
"""

from __future__ import annotations

import inspect

import torch

from .ops import activation_op
from .registry import ACTIVATIONS, get

__all__ = ["activation", *ACTIVATIONS]


def activation(x: torch.Tensor, name: str, *, inplace: bool = False, memory: str = "auto",
               **params) -> torch.Tensor:
    """Applies activation ``name`` with ``params`` (defaults from the registry) to x.

    With ``inplace=True`` x is overwritten and returned; under autograd this follows
    ``torch.nn.ReLU(inplace=True)``: it raises for a leaf that requires grad. ``memory`` picks
    what backward keeps (fused_act.memory)."""
    kernel, args = get(name).kernel_args(params)
    return activation_op(x, kernel, args, inplace, memory)


def _make(spec):
    names = list(spec.params)

    def fn(x: torch.Tensor, *args, inplace: bool = False, memory: str = "auto", **kwargs) -> torch.Tensor:
        if len(args) > len(names):
            raise TypeError(f"fused_act.{spec.name}() takes at most {len(names)} parameter(s) {names}, "
                            f"got {len(args)}")
        for n, v in zip(names, args):
            if n in kwargs:
                raise TypeError(f"fused_act.{spec.name}() got multiple values for {n!r}")
            kwargs[n] = v
        kernel, params = spec.kernel_args(kwargs)
        return activation_op(x, kernel, params, inplace, memory)

    P = inspect.Parameter
    fn.__signature__ = inspect.Signature(
        [P("x", P.POSITIONAL_ONLY)]
        + [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec.params.items()]
        + [P("inplace", P.KEYWORD_ONLY, default=False), P("memory", P.KEYWORD_ONLY, default="auto")]
    )
    fn.__name__ = fn.__qualname__ = spec.name
    fn.__doc__ = (f"{spec.name} activation, fused forward and backward kernels.\n\n"
                  f"Agrees with the torch composition in fused_act.registry.ACTIVATIONS[{spec.name!r}].reference"
                  + (f"; source: {spec.source}." if spec.source else "."))
    return fn


for _spec in ACTIVATIONS.values():
    globals()[_spec.name] = _make(_spec)
del _spec
