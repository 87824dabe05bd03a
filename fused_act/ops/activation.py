"""Python side of the torch operators in ``torch.ops.fused_act``: fake (meta) kernels for
torch.compile / torch.export, the eager and traced call paths, and the end of the autograd
chain (the autograd of activation, its in-place form and activation_backward is C++:
csrc/ops/autograd.cpp).

The C++ ops (csrc/ops/activation_ops.cpp) take the kernel name and a float list of parameters:

    activation(x, act, params)                              y = f(x)
    activation_(x, act, params)                             in place, returns nothing
    activation_backward(grad, saved, act, params, from_output)         grad * f'(.)
    activation_double_backward(grad_grad, grad, saved, act, params, from_output)

``saved`` is the forward's input or output, as the C++ functor says (``_C.saved_for``). The
backward op is itself differentiable (through the double-backward op), so every activation is
twice differentiable; a third derivative raises.
"""

from __future__ import annotations

import torch

from .. import _C
from .. import memory as _memory
from ..memory import _resolve, _saved_for, resolve_memory
from .mask import traced_mask_activation

_ops = torch.ops.fused_act


@torch.compiler.assume_constant_result
def saved_for(act: str, params: tuple[float, ...]) -> str:
    """What backward keeps for this kernel and parameters: 'none', 'input' or 'output'.
    (A constant for Dynamo, which cannot trace into the C++ call.)"""
    return _saved_for(act, params)


# ------------------------------------------------------------------ fake kernels


@torch.library.register_fake("fused_act::activation")
def _(x, act, params):
    return torch.empty_like(x)


@torch.library.register_fake("fused_act::activation_")
def _(x, act, params):
    return None


@torch.library.register_fake("fused_act::activation_backward")
def _(grad, saved, act, params, from_output):
    return torch.empty_like(saved)


@torch.library.register_fake("fused_act::activation_double_backward")
def _(grad_grad, grad, saved, act, params, from_output):
    return torch.empty_like(saved)


# ------------------------------------------------------------------ autograd
# activation and activation_backward have C++ autograd (csrc/ops/autograd.cpp: a Python
# autograd kernel cost more than the kernels at training sizes). The double backward op is
# the end of the chain:


def _no_third_derivative(ctx, *grads):
    raise RuntimeError("fused_act: third and higher derivatives of activations are not implemented")


torch.library.register_autograd(
    "fused_act::activation_double_backward", _no_third_derivative, setup_context=lambda ctx, inputs, output: None
)


# Module-level names: each attribute lookup is ~30 ns of a ~1.5 us call (dynamo still sees the
# function itself, and makes it return True while tracing).
_is_compiling = torch.compiler.is_compiling
_grad_enabled = torch.is_grad_enabled
_Tensor = torch.Tensor


def traced(x, *more) -> bool:
    """Whether the call is being traced: by torch.compile / torch.export, or by torch.fx's
    symbolic trace (its Proxies are not tensors). Traced calls go through the registered
    ``torch.ops.fused_act`` ops, eager ones through the typed C++ entries of ``_C``."""
    if _is_compiling() or not isinstance(x, _Tensor):
        return True
    for t in more:  # no generator: all(...) over one costs more than the C++ call it guards
        if not isinstance(t, _Tensor):
            return True
    return False


def activation_op(
    x: torch.Tensor, act: str, params: list[float], inplace: bool = False, memory: str = "auto"
) -> torch.Tensor:
    """Runs kernel ``act`` on x (out of place, or in place with autograd support), keeping for
    backward what ``memory`` asks (fused_act/memory.py).

    Eager calls go straight to C++ (``_C.activation``: a typed dispatcher call, autograd in
    C++), one Python frame from a module's forward; torch.compile and torch.export trace the
    registered ops instead. ``identity`` returns x itself, as ``nn.Identity`` does."""
    if _is_compiling() or not isinstance(x, _Tensor):  # traced(x), without the extra frame
        return _traced(x, act, params, inplace, memory)
    if (
        (memory != "auto" or _memory.AUTO_PREFERS_MASK)
        and _resolve(act, tuple(params), memory) == "mask"
        and _grad_enabled()
        and x.requires_grad
    ):  # (without a gradient to compute there is no mask to keep: the plain kernels below)
        return _C.activation_mask_inplace(x, act, params) if inplace else _C.activation_mask(x, act, params)
    if act == "identity":
        return x
    if inplace:
        return _C.activation_inplace(x, act, params)
    return _C.activation(x, act, params)


def _traced(x: torch.Tensor, act: str, params: list[float], inplace: bool, memory: str) -> torch.Tensor:
    if resolve_memory(act, tuple(params), memory) == "mask":
        return traced_mask_activation(x, act, params, inplace)
    if not inplace:
        return _ops.activation(x, act, params)
    # torch.compile / torch.export functionalize mutations into out-of-place ops plus a copy
    # anyway; writing it that way keeps the op's fake and autograd kernels in the graph (an
    # in-place custom op under autograd would leave a bare mutation whose gradient export drops).
    # The input form of backward must see x before the copy overwrites it.
    src = x.clone() if saved_for(act, tuple(params)) == "input" else x
    return x.copy_(_ops.activation(src, act, params))
