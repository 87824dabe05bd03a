"""The Python side of the ``torch.ops.fused_act`` operators, one module per op family as in
csrc/ops/: their fake (meta) kernels for torch.compile / torch.export and their call paths. Their
autograd is C++ (csrc/ops/*autograd.cpp) except the glu / gated double backward (``fused``).

    activation   activation, activation_ and their backward ops; the eager fast path
    fused        bias_act, glu, gated and their backward ops
    batch_norm   batch_norm_act (batch norm + activation) and its backward op
    mask         the 1-bit-mask forms of the piecewise-linear activations (``memory="mask"``)
    softmax      softmax / log_softmax and the backward op
"""

from . import activation, batch_norm, fused, mask, softmax  # noqa: F401  (registers the fake kernels)
from .activation import activation_op, saved_for, traced

__all__ = ["activation_op", "saved_for", "traced"]
