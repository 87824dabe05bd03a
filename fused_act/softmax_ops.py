"""softmax and log_softmax: fake kernels for the ``torch.ops.fused_act`` ops
(csrc/ops/softmax_ops.cpp), and the functional API.

    softmax(x, dim, log)                  y = softmax(x) or log_softmax(x) along dim
    softmax_backward(grad, y, dim, log)   dx, from the forward's output y alone

Both are differentiable (csrc/ops/softmax_autograd.cpp): the backward op's own derivative is
composed of torch ops, so gradgradcheck holds and higher derivatives follow from torch's autograd.
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
