"""softmax and log_softmax: fake kernels for the ``torch.ops.fused_act`` ops
(csrc/ops/softmax_ops.cpp); the functional API is ``fused_act.functional``.

    softmax(x, dim, log)                  y = softmax(x) or log_softmax(x) along dim
    softmax_backward(grad, y, dim, log)   dx, from the forward's output y alone

Both are differentiable (csrc/ops/softmax_autograd.cpp): the backward op's own derivative is
composed of torch ops, so gradgradcheck holds and higher derivatives follow from torch's autograd.
"""

from __future__ import annotations

import torch

from .. import _C  # noqa: F401  (loading it registers the ops)


@torch.library.register_fake("fused_act::softmax")
def _(x, dim, log):
    return x.new_empty(x.shape)


@torch.library.register_fake("fused_act::softmax_backward")
def _(grad, y, dim, log):
    return y.new_empty(y.shape)
