"""Modules built on the fused ops (re-exported by ``fused_act.nn``):

- ``Linear`` / ``Conv2d``: ``torch.nn.Linear`` / ``Conv2d`` with an ``activation``; the matmul or
  convolution runs without its bias, then one fused bias + activation pass. They subclass the
  torch modules, so parameters, initialisation and ``state_dict`` keys are torch's and
  pretrained weights load unchanged.
- ``BiasAct``: a learnable per-channel bias followed by an activation, fused.
- ``BatchNorm1d`` / ``BatchNorm2d`` / ``BatchNorm3d``: torch's batch norm modules with an
  ``activation`` applied in the same pass (``functional.batch_norm_act``); what ``convert`` puts
  in place of a ``BatchNorm -> activation`` pair.
- ``GLU`` (``torch.nn.GLU``'s signature plus ``activation`` and ``gate``), ``SwiGLU``, ``GeGLU``,
  ``ReGLU``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .functional import activation as _activation
from .functional import batch_norm_act, bias_act, glu
from .registry import get

__all__ = [
    "BatchNorm1d",
    "BatchNorm2d",
    "BatchNorm3d",
    "BiasAct",
    "Conv2d",
    "GLU",
    "GeGLU",
    "Linear",
    "ReGLU",
    "SwiGLU",
]


class _WithActivation:
    """The ``activation`` name and its parameters, checked at construction."""

    def _set_activation(self, activation: str, params: dict) -> None:
        self.activation = activation
        self.activation_params = get(activation).resolve(params)

    def _bias_act(self, y: torch.Tensor, dim: int) -> torch.Tensor:
        if self.bias is None:
            return _activation(y, self.activation, **self.activation_params)
        return bias_act(y, self.bias, self.activation, dim=dim, **self.activation_params)

    def _activation_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.activation_params.items())
        return f", activation={self.activation!r}{params}"


class Linear(_WithActivation, nn.Linear):
    """``activation(x @ W.T + b)`` with the bias add fused into the activation."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
        activation: str = "identity",
        **params,
    ):
        nn.Linear.__init__(self, in_features, out_features, bias, device, dtype)
        self._set_activation(activation, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._bias_act(F.linear(x, self.weight), dim=-1)

    def extra_repr(self) -> str:
        return super().extra_repr() + self._activation_repr()


class Conv2d(_WithActivation, nn.Conv2d):
    """``activation(conv2d(x, W) + b)`` with the bias add fused into the activation;
    ``torch.nn.Conv2d``'s arguments, then ``activation`` and its parameters."""

    def __init__(self, *args, activation: str = "identity", **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in get(activation).params}
        nn.Conv2d.__init__(self, *args, **kwargs)
        self._set_activation(activation, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channels are dim -3 of both (N, C, H, W) and unbatched (C, H, W)
        return self._bias_act(self._conv_forward(x, self.weight, None), dim=-3)

    def extra_repr(self) -> str:
        return super().extra_repr() + self._activation_repr()


class BiasAct(_WithActivation, nn.Module):
    """A learnable bias of ``num_features`` values along ``dim`` (zeros at first), then
    ``activation``, in one pass."""

    def __init__(
        self, num_features: int, activation: str = "identity", dim: int = 1, device=None, dtype=None, **params
    ):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_features, device=device, dtype=dtype))
        self.dim = dim
        self._set_activation(activation, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._bias_act(x, self.dim)

    def extra_repr(self) -> str:
        return f"{self.bias.numel()}, dim={self.dim}" + self._activation_repr()


class _BatchNormAct(_WithActivation):
    """torch's ``_BatchNorm.forward`` (running averages, ``momentum=None``'s cumulative average (eager
    only: it reads ``num_batches_tracked`` as a Python float, which fullgraph compile cannot),
    ``track_running_stats``) with the activation fused: ``torch.nn.BatchNormNd``'s arguments, then
    ``activation`` and its parameters."""

    def __init__(self, *args, activation: str = "identity", **kwargs):
        params = {k: kwargs.pop(k) for k in list(kwargs) if k in get(activation).params}
        super().__init__(*args, **kwargs)
        self._set_activation(activation, params)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return batch_norm_act(
            x,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            batch_stats,
            factor,
            self.eps,
            self.activation,
            **self.activation_params,
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + self._activation_repr()


class BatchNorm1d(_BatchNormAct, nn.BatchNorm1d):
    """``activation(torch.nn.BatchNorm1d(...)(x))`` in one pass after the statistics."""


class BatchNorm2d(_BatchNormAct, nn.BatchNorm2d):
    """``activation(torch.nn.BatchNorm2d(...)(x))`` in one pass after the statistics."""


class BatchNorm3d(_BatchNormAct, nn.BatchNorm3d):
    """``activation(torch.nn.BatchNorm3d(...)(x))`` in one pass after the statistics."""


class GLU(nn.Module):
    """``torch.nn.GLU(dim)`` (sigmoid, second half gates) by default; any registered
    ``activation``, and ``gate="first"`` for the Megatron / Liger-Kernel / vLLM layout."""

    def __init__(self, dim: int = -1, activation: str = "sigmoid", gate: str = "second", **params):
        super().__init__()
        self.dim, self.activation, self.gate = dim, activation, gate
        self.activation_params = get(activation).resolve(params)
        if gate not in ("first", "second"):
            raise ValueError(f"fused_act.nn.GLU: gate must be 'first' or 'second', got {gate!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(x, self.activation, self.dim, self.gate, **self.activation_params)

    def extra_repr(self) -> str:
        params = "".join(f", {k}={v!r}" for k, v in self.activation_params.items())
        return f"dim={self.dim}, activation={self.activation!r}, gate={self.gate!r}{params}"


class SwiGLU(GLU):
    """``silu(gate half) * other half`` (Shazeer 2020)."""

    def __init__(self, dim: int = -1, gate: str = "second"):
        super().__init__(dim, "silu", gate)


class GeGLU(GLU):
    """``gelu(gate half) * other half`` (Shazeer 2020)."""

    def __init__(self, dim: int = -1, gate: str = "second", approximate: str = "none"):
        super().__init__(dim, "gelu", gate, approximate=approximate)


class ReGLU(GLU):
    """``relu(gate half) * other half`` (Shazeer 2020)."""

    def __init__(self, dim: int = -1, gate: str = "second"):
        super().__init__(dim, "relu", gate)
