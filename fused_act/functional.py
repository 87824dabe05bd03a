"""Functional API, generated from the registry: ``fused_act.<name>(x, *params, inplace=False,
memory="auto")`` for every activation, and ``fused_act.activation(x, name, **params)``;
``memory`` chooses what backward keeps ("auto", "mask", "output", "input"; fused_act/memory.py).
Also the fusions ``bias_act``, ``batch_norm_act``, ``glu`` (and its ``swiglu``, ``geglu``, ``reglu`` shortcuts) and
``gated``, which take any registered activation by name, and ``softmax`` / ``log_softmax``.

Each function takes its parameters positionally or by keyword with torch's names and
defaults (``elu(x, alpha=1.0)``, ``hardtanh(x, min_val=-1.0, max_val=1.0)``,
``gelu(x, approximate="none")``) and runs the fused kernel for the tensor's device.
"""

from __future__ import annotations

import inspect
import sys

import torch

from . import _C
from . import memory as _memory
from .ops import activation_op, traced
from .registry import ACTIVATIONS, kernel_args_for

_ops = torch.ops.fused_act

__all__ = [
    "activation",
    "batch_norm_act",
    "bias_act",
    "gated",
    "geglu",
    "glu",
    "log_softmax",
    "reglu",
    "softmax",
    "swiglu",
    *ACTIVATIONS,
]


def activation(x: torch.Tensor, name: str, *, inplace: bool = False, memory: str = "auto", **params) -> torch.Tensor:
    """Applies activation ``name`` with ``params`` (defaults from the registry) to x.

    With ``inplace=True`` x is overwritten and returned; under autograd this follows
    ``torch.nn.ReLU(inplace=True)``: it raises for a leaf that requires grad. ``memory`` picks
    what backward keeps (fused_act.memory)."""
    kernel, args = kernel_args_for(name, params)
    return activation_op(x, kernel, args, inplace, memory)


def bias_act(x: torch.Tensor, bias: torch.Tensor, /, name: str, dim: int = 1, **params) -> torch.Tensor:
    """``name(x + bias)`` in one pass, the 1-D ``bias`` broadcast along ``dim`` of x (dim=1 fits
    Linear outputs (N, C) and images (N, C, H, W), channels-last included). Agrees with
    ``activation(x + bias.view(shape), name)`` under autograd; backward returns the bias
    gradient from the same pass."""
    kernel, args = kernel_args_for(name, params)
    if traced(x, bias):  # traced: the registered op; eager: the typed C++ entry
        return _ops.bias_act(x, bias, dim, kernel, args)
    return _C.bias_act(x, bias, dim, kernel, args)


def batch_norm_act(
    x: torch.Tensor,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
    name: str = "identity",
    **params,
) -> torch.Tensor:
    """``name(F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps))``
    with F.batch_norm's arguments, channels along dim 1 (NCHW and channels-last alike). The
    normalisation is applied inside the activation's loop, so its output never reaches memory;
    backward keeps x (as batch norm does) and no second tensor. In training the running
    statistics are updated in place, as F.batch_norm does."""
    kernel, args = kernel_args_for(name, params)
    if traced(x):
        return _ops.batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, kernel, args)[0]
    return _C.batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, kernel, args)


def _gate_first(gate: str) -> bool:
    if gate not in ("first", "second"):
        raise ValueError(f"fused_act.glu: gate must be 'first' or 'second', got {gate!r}")
    return gate == "first"


def glu(x: torch.Tensor, /, name: str = "sigmoid", dim: int = -1, gate: str = "second", **params) -> torch.Tensor:
    """Gated linear unit: x split in two halves a, b along ``dim``; returns ``name(gate) * other``.

    ``gate="second"`` (default) activates the second half, as ``torch.nn.functional.glu`` does
    (``glu(x) == F.glu(x)``); Megatron, Liger-Kernel, vLLM and Transformer Engine activate the
    first half: pass ``gate="first"`` to load their weights. The halves are read in place (no
    split copy)."""
    kernel, args = kernel_args_for(name, params)
    if traced(x):
        return _ops.glu(x, dim, _gate_first(gate), kernel, args)
    return _C.glu(x, dim, _gate_first(gate), kernel, args)


def swiglu(x: torch.Tensor, dim: int = -1, gate: str = "second") -> torch.Tensor:
    """SwiGLU (Shazeer 2020): ``silu(gate half) * other half``; see ``glu`` for ``gate``."""
    return glu(x, "silu", dim, gate)


def geglu(x: torch.Tensor, dim: int = -1, gate: str = "second", approximate: str = "none") -> torch.Tensor:
    """GeGLU (Shazeer 2020): ``gelu(gate half, approximate) * other half``; see ``glu``."""
    return glu(x, "gelu", dim, gate, approximate=approximate)


def reglu(x: torch.Tensor, dim: int = -1, gate: str = "second") -> torch.Tensor:
    """ReGLU (Shazeer 2020): ``relu(gate half) * other half``; see ``glu`` for ``gate``."""
    return glu(x, "relu", dim, gate)


def gated(a: torch.Tensor, b: torch.Tensor, /, name: str = "sigmoid", **params) -> torch.Tensor:
    """``name(a) * b`` for two tensors of one shape: a gated unit whose gate and value come
    from separate projections (no concatenation needed)."""
    kernel, args = kernel_args_for(name, params)
    if traced(a, b):
        return _ops.gated(a, b, kernel, args)
    return _C.gated(a, b, kernel, args)


def _text_signature(fn) -> str:
    # fn's signature without annotations: the form CPython's __text_signature__ parses
    P = inspect.Parameter
    sig = inspect.signature(fn)
    return str(
        sig.replace(
            parameters=[p.replace(annotation=P.empty) for p in sig.parameters.values()],
            return_annotation=inspect.Signature.empty,
        )
    )


def _builtin(entry, fn):
    # torch.compile traces fn, the builtin's Python form, in its place
    torch.compiler.substitute_in_graph(entry, skip_signature_check=True)(fn)
    return entry


def _make(spec):
    # fn's closure holds only strings and lists: Dynamo traces fn as the builtin's polyfill
    # without a source for its cells, and cannot wrap the spec object that way.
    name, names = spec.name, list(spec.params)
    default_kernel, default_params = kernel_args_for(spec.name, {})  # the common call: no parameters given

    def fn(x: torch.Tensor, *args, inplace: bool = False, memory: str = "auto", **kwargs) -> torch.Tensor:
        if not args and not kwargs:
            return activation_op(x, default_kernel, default_params, inplace, memory)
        if len(args) > len(names):
            raise TypeError(f"fused_act.{name}() takes at most {len(names)} parameter(s) {names}, got {len(args)}")
        for n, v in zip(names, args):
            if n in kwargs:
                raise TypeError(f"fused_act.{name}() got multiple values for {n!r}")
            kwargs[n] = v
        kernel, params = kernel_args_for(name, kwargs)
        return activation_op(x, kernel, params, inplace, memory)

    P = inspect.Parameter
    fn.__signature__ = inspect.Signature(
        [P("x", P.POSITIONAL_ONLY)]
        + [P(n, P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec.params.items()]
        + [P("inplace", P.KEYWORD_ONLY, default=False), P("memory", P.KEYWORD_ONLY, default="auto")]
    )
    fn.__name__ = fn.__qualname__ = spec.name
    fn.__doc__ = (
        f"{spec.name} activation, fused forward and backward kernels.\n\n"
        f"Agrees with the torch composition in fused_act.registry.ACTIVATIONS[{spec.name!r}].reference"
        + (f"; source: {spec.source}." if spec.source else ".")
    )
    if default_kernel == "identity":  # returns x itself: nothing for C to save
        return fn
    # What fused_act.<name> is: a builtin that runs fn(x, *params) for a plain tensor and plain
    # parameters in C (resolved by kernel_args_for once per parameters given) and hands every
    # other call to fn (csrc/python_functional.cpp); torch.compile traces fn in its place.
    return _builtin(
        _C.functional_entry(
            spec.name,
            str(fn.__signature__),
            fn.__doc__,
            default_kernel,
            default_params,
            names,
            fn,
            kernel_args_for,
            sys.modules[__name__],
            vars(_memory),
        ),
        fn,
    )


for _spec in ACTIVATIONS.values():
    globals()[_spec.name] = _make(_spec)
del _spec


# What fused_act.activation is: a builtin that runs activation(x, name) for a functional's name
# and a plain tensor in C (that functional's fast path) and hands every other call to the function.
activation = _builtin(
    _C.functional_by_name(_text_signature(activation), activation.__doc__, activation, sys.modules[__name__]),
    activation,
)


def _check_dim(name: str, dim) -> None:
    # torch.softmax's rule (an int, not a bool); the C entry takes only exact ints, so only the
    # calls that reach Python are checked
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"fused_act.{name}: dim must be an int, got {type(dim).__name__}")
    if not -(2**63) <= dim < 2**63:
        raise IndexError(f"fused_act.{name}: dim {dim} is out of range")


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``torch.softmax(x, dim)``: exp(x - max) / sum, reduced types computed in float."""
    _check_dim("softmax", dim)
    if traced(x):  # traced: the registered op; eager: the typed C++ entry
        return _ops.softmax(x, dim, False)
    return _C.softmax(x, dim, False)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``torch.log_softmax(x, dim)``: (x - max) - log(sum(exp(x - max)))."""
    _check_dim("log_softmax", dim)
    if traced(x):
        return _ops.softmax(x, dim, True)
    return _C.softmax(x, dim, True)


# Builtins that run (x, dim) with an int dim in C and hand every other call to the function
# (csrc/python_functional.cpp).
_module = sys.modules[__name__]
softmax = _builtin(_C.softmax_entry(False, _text_signature(softmax), softmax.__doc__, softmax, _module), softmax)
log_softmax = _builtin(
    _C.softmax_entry(True, _text_signature(log_softmax), log_softmax.__doc__, log_softmax, _module), log_softmax
)
