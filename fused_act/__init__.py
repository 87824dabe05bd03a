"""fused_act: fused activation-function kernels for PyTorch (CPU SIMD + CUDA).

import fused_act
y = fused_act.leaky_tanh(x, a=0.25)             # functional, every registered activation
y = fused_act.activation(x, "elu", alpha=0.5)   # by name
y = fused_act.bias_act(x, b, "gelu")            # gelu(x + b), b along dim 1
m = fused_act.nn.BatchNorm2d(64, activation="relu")  # relu(batch_norm(x)) in one pass
y = fused_act.swiglu(x)                         # silu(second half) * first half, like F.glu
m = fused_act.nn.GELU(approximate="tanh")       # torch.nn-style modules
p = fused_act.softmax(x, dim=-1)                # also log_softmax; nn.Softmax, nn.LogSoftmax
y = fused_act.relu(x, memory="mask")            # backward keeps 1 bit per element
fused_act.saved_bytes_per_element("relu")       # what backward keeps, per element
fused_act.ACTIVATIONS                           # the registry
fused_act.info()                                # what this build has
"""

from __future__ import annotations

import torch

from . import _C, functional, nn, ops  # noqa: F401  (registers the torch ops)
from .convert import ConvertReport, convert, convert_functional
from .functional import *  # noqa: F401,F403
from .functional import activation, batch_norm_act, bias_act, gated, geglu, glu, log_softmax, reglu, softmax, swiglu
from .memory import MEMORY_MODES, memory_modes, saved_bytes_per_element
from .registry import ACTIVATIONS, ActivationSpec

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "ActivationSpec",
    "ConvertReport",
    "MEMORY_MODES",
    "activation",
    "batch_norm_act",
    "bias_act",
    "convert",
    "convert_functional",
    "functional",
    "gated",
    "geglu",
    "glu",
    "info",
    "log_softmax",
    "memory_modes",
    "nn",
    "reglu",
    "saved_bytes_per_element",
    "softmax",
    "swiglu",
    *ACTIVATIONS,
]


def info() -> dict:
    """Versions, and which kernels this build has and will use on this machine."""
    return {
        "fused_act": __version__,
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_kernels_built": bool(_C.cuda_built),
        "cuda_archs": _C.cuda_archs or None,
        "cuda_available": torch.cuda.is_available(),
        "cpu_isas_built": list(_C.cpu_isas_built()),
        "cpu_isa": _C.cpu_isa(),
        "cpu_isa_bfloat16": _C.cpu_isa_bfloat16(),
        "cpu_stream_min_bytes": _C.cpu_streaming()[0],
        "cpu_threads": torch.get_num_threads(),
        "activations": list(ACTIVATIONS),
    }
