"""Python side of batch_norm_act (csrc/ops/batch_norm_ops.cpp): fake kernels for torch.compile /
torch.export. Its autograd, double backward included, is C++ (csrc/ops/batch_norm_autograd.cpp).

    batch_norm_act(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params)
        -> (y, save_mean, save_invstd); in training, running_mean / running_var are updated in place
    batch_norm_act_backward(grad, x, weight, bias, save_mean, save_invstd, training, act, params,
        output_mask) -> (grad_x, grad_weight, grad_bias)
"""

from __future__ import annotations

import torch

from .fused import _channel_output


def _stats_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


@torch.library.register_fake("fused_act::batch_norm_act")
def _(x, weight, bias, running_mean, running_var, training, momentum, eps, act, params):
    c = x.shape[1]
    return _channel_output(x, 1), x.new_empty(c, dtype=_stats_dtype(x)), x.new_empty(c, dtype=_stats_dtype(x))


@torch.library.register_fake("fused_act::batch_norm_act_backward")
def _(grad, x, weight, bias, save_mean, save_invstd, training, act, params, output_mask):
    c = x.shape[1]
    wdtype = weight.dtype if weight is not None else _stats_dtype(x)
    return (
        _channel_output(x, 1) if output_mask[0] else None,
        x.new_empty(c, dtype=wdtype) if output_mask[1] else None,
        x.new_empty(c, dtype=wdtype) if output_mask[2] else None,
    )
