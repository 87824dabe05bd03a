"""softmax and log_softmax: fake kernels and autograd for the ``torch.ops.fused_act`` ops
(csrc/ops/softmax_ops.cpp), and the functional API.

    softmax(x, dim, log)                  y = softmax(x) or log_softmax(x) along dim
    softmax_backward(grad, y, dim, log)   dx, from the forward's output y alone

Both are differentiable: the backward op's own derivative is composed of torch ops (derived
below), so gradgradcheck holds; higher derivatives follow from torch's autograd of that composition.
"""

from __future__ import annotations

import warnings

import torch

from . import _C  # noqa: F401  (loading it registers the ops)

__all__ = ["log_softmax", "softmax"]

_ops = torch.ops.fused_act


@torch.library.register_fake("fused_act::softmax")
def _(x, dim, log):
    return x.new_empty(x.shape)


@torch.library.register_fake("fused_act::softmax_backward")
def _(grad, y, dim, log):
    return y.new_empty(y.shape)


def _forward_setup(ctx, inputs, output):
    _, ctx.dim, ctx.log = inputs
    ctx.save_for_backward(output)


def _forward_backward(ctx, grad):
    (y,) = ctx.saved_tensors
    return _ops.softmax_backward(grad, y, ctx.dim, ctx.log), None, None


torch.library.register_autograd("fused_act::softmax", _forward_backward, setup_context=_forward_setup)


def _backward_setup(ctx, inputs, output):
    grad, y, ctx.dim, ctx.log = inputs
    ctx.save_for_backward(grad, y)


# Derivatives of the backward op dx = B(g, y), given gg = dL/d(dx); sums run along dim.
#   softmax:      dx = y * (g - s),        s = sum(g * y)
#     dL/dg = y * (gg - sum(gg * y))       = B(gg, y): the backward op again
#     dL/dy = gg * (g - s) - g * sum(gg * y)
#   log_softmax:  dx = g - exp(y) * S,     S = sum(g)
#     dL/dg = gg - sum(gg * exp(y))
#     dL/dy = -gg * exp(y) * S
# Autograd then carries dL/dy back to x through the forward op's node.
def _backward_backward(ctx, gg):
    grad, y = ctx.saved_tensors
    dim, d_grad, d_y = ctx.dim, None, None
    if ctx.log:
        e = y.exp()
        if ctx.needs_input_grad[0]:
            d_grad = gg - (gg * e).sum(dim, keepdim=True)
        if ctx.needs_input_grad[1]:
            d_y = -gg * e * grad.sum(dim, keepdim=True)
    else:
        if ctx.needs_input_grad[0]:
            d_grad = _ops.softmax_backward(gg, y, dim, False)
        if ctx.needs_input_grad[1]:
            s = (grad * y).sum(dim, keepdim=True)
            d_y = gg * (grad - s) - grad * (gg * y).sum(dim, keepdim=True)
    return d_grad, d_y, None, None


torch.library.register_autograd("fused_act::softmax_backward", _backward_backward, setup_context=_backward_setup)


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``torch.softmax(x, dim)``: exp(x - max) / sum, reduced types computed in float."""
    return _ops.softmax(x, dim, False)


def log_softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``torch.log_softmax(x, dim)``: (x - max) - log(sum(exp(x - max)))."""
    return _ops.softmax(x, dim, True)


def legacy_dim(name: str, ndim: int) -> int:
    """torch.nn.Softmax(dim=None)'s implicit choice, with torch's deprecation warning."""
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1
