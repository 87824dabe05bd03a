"""The mask ops (csrc/ops/mask_ops.cpp): fake kernels, and the call path of ``memory="mask"``.
Their autograd is C++ (csrc/ops/mask_autograd.cpp).

    activation_mask(x, act, params) -> (y, mask)        mask: uint8, ceil(numel / 8) bytes
    activation_mask_(x, act, params) -> mask            x = f(x)
    activation_mask_backward(grad, mask, act, params)   grad * f'

Bit k of the mask belongs to element k of y in memory order, so backward brings the incoming
gradient to y's strides first. The mask backward is linear in grad: its derivative is itself,
so double backward works (and is 0 through the mask, as f'' is 0 for these activations).
"""

from __future__ import annotations

import torch

try:  # the name changed in torch 2.9
    from torch._prims_common import is_non_overlapping_and_dense_or_false as is_non_overlapping_and_dense
except ImportError:
    from torch._prims_common import is_non_overlapping_and_dense

from ..memory import _maskable

_ops = torch.ops.fused_act


def _dense_like(t: torch.Tensor) -> torch.Tensor:
    # The C++ front's rule: dense tensors keep their layout, others become row-major.
    return torch.empty_like(t) if is_non_overlapping_and_dense(t) else t.new_empty(t.shape)


def _check_maskable(op: str, act: str) -> None:
    # The C++ error, raised at trace time too.
    if act not in _maskable():
        raise RuntimeError(
            f"fused_act.{op}: {act} cannot keep a 1-bit mask; maskable: {', '.join(sorted(_maskable()))}"
        )


def _mask_for(t: torch.Tensor) -> torch.Tensor:
    return t.new_empty(((t.numel() + 7) // 8,), dtype=torch.uint8)


@torch.library.register_fake("fused_act::activation_mask")
def _(x, act, params):
    _check_maskable("activation_mask", act)
    return _dense_like(x), _mask_for(x)


@torch.library.register_fake("fused_act::activation_mask_")
def _(x, act, params):
    _check_maskable("activation_mask_", act)
    return _mask_for(x)


@torch.library.register_fake("fused_act::activation_mask_backward")
def _(grad, mask, act, params):
    _check_maskable("activation_mask_backward", act)
    torch._check(
        mask.dim() == 1 and mask.numel() == (grad.numel() + 7) // 8,
        lambda: (
            f"fused_act.activation_mask_backward: mask has shape {tuple(mask.shape)}, "
            f"expected [{(grad.numel() + 7) // 8}]"
        ),
    )
    return _dense_like(grad)


def traced_mask_activation(x: torch.Tensor, act: str, params: list[float], inplace: bool) -> torch.Tensor:
    """f(x) keeping a 1-bit mask for backward (when x needs a gradient at all), as torch.compile,
    torch.export and torch.fx trace it: the registered ops. (Eager calls take the typed C++
    entries from ops.activation_op; their autograd and in-place checks: mask_autograd.cpp.)"""
    if not (torch.is_grad_enabled() and x.requires_grad):  # nothing to keep: the plain kernels
        if inplace:
            _ops.activation_(x, act, params)
            return x
        return _ops.activation(x, act, params)
    y = _ops.activation_mask(x, act, params)[0]
    # As ops.activation_op: functionalization turns the mutation into out-of-place + copy.
    return x.copy_(y) if inplace else y
