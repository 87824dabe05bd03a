"""What backward keeps from the forward, chosen per call with ``memory=``:

    "mask"    one bit per element (piecewise-linear activations: relu, leaky_relu, hardtanh,
              relu6, hardsigmoid; the list comes from C++, ``_C.maskable()``);
    "output"  the output y (activations whose derivative can be written in y; allows a
              memory-free ``inplace=True``);
    "input"   the input x (the others);
    "auto"    the default: the output or input as the activation's backward is written
              (the mask only if ``AUTO_PREFERS_MASK``, which measurement set to False).

Identity keeps nothing whatever is asked. "output" and "input" are accepted only where that
is the form backward is written in (``_C.saved_for``), so a call never silently keeps more
than it asked for.

Also here: the fake kernels of the mask ops (csrc/ops/mask_ops.cpp; their autograd is
csrc/ops/mask_autograd.cpp)

    activation_mask(x, act, params) -> (y, mask)        mask: uint8, ceil(numel / 8) bytes
    activation_mask_(x, act, params) -> mask            x = f(x)
    activation_mask_backward(grad, mask, act, params)   grad * f'

Bit k of the mask belongs to element k of y in memory order, so backward brings the incoming
gradient to y's strides first. The mask backward is linear in grad: its derivative is itself,
so double backward works (and is 0 through the mask, as f'' is 0 for these activations).
"""

from __future__ import annotations

import functools

import torch

try:  # the name changed in torch 2.9
    from torch._prims_common import is_non_overlapping_and_dense_or_false as is_non_overlapping_and_dense
except ImportError:
    from torch._prims_common import is_non_overlapping_and_dense

from . import _C
from .registry import get

__all__ = ["AUTO_PREFERS_MASK", "MEMORY_MODES", "memory_modes", "resolve_memory", "saved_bytes_per_element"]

_ops = torch.ops.fused_act

MEMORY_MODES = ("auto", "mask", "output", "input")

# Whether memory="auto" keeps the mask for maskable activations: only if that is not slower
# than keeping the full tensor. Forward + backward at 2^24 float32 it was 1-4% slower (relu
# 1.04x at 1 and 2 threads, leaky_relu 1.01x, hardsigmoid 1.04x; docs/memory.md,
# `python -m bench.memory_modes`), so "auto" keeps the output (or input) and the mask is
# opt-in: 32x less saved memory in float32 for that time.
AUTO_PREFERS_MASK = False


@functools.cache
def _maskable() -> frozenset[str]:
    return frozenset(_C.maskable())


@functools.cache
def _resolve(act: str, params: tuple[float, ...], memory: str) -> str:
    saved = _C.saved_for(act, list(params))
    maskable = act in _maskable()
    if memory == "auto":
        return "mask" if maskable and AUTO_PREFERS_MASK else saved
    if memory == "mask":
        if not maskable:
            raise ValueError(
                f"fused_act.{act}: memory='mask' needs a piecewise-linear activation "
                f"({', '.join(sorted(_maskable()))}); {act} keeps its {saved}"
            )
        return "mask"
    if memory in ("output", "input"):
        if saved not in (memory, "none"):
            raise ValueError(
                f"fused_act.{act}: memory={memory!r} is not available with these parameters; "
                f"its backward is written in the {saved}"
            )
        return saved
    raise ValueError(f"fused_act: memory must be one of {MEMORY_MODES}, got {memory!r}")


@torch.compiler.assume_constant_result
def resolve_memory(act: str, params: tuple[float, ...], memory: str) -> str:
    """What a call of kernel ``act`` keeps for backward: 'mask', 'output', 'input' or 'none'."""
    return _resolve(act, params, memory)


def memory_modes(name: str, **params) -> tuple[str, ...]:
    """The ``memory=`` values activation ``name`` accepts with these parameters."""
    kernel, args = get(name).kernel_args(params)
    out = []
    for m in MEMORY_MODES:
        try:
            _resolve(kernel, tuple(args), m)
            out.append(m)
        except ValueError:
            pass
    return tuple(out)


def saved_bytes_per_element(name: str, dtype: torch.dtype = torch.float32, memory: str = "auto", **params) -> float:
    """Bytes backward keeps per element of the input: 1/8 for the mask, the element size for
    the input or output, 0 for identity. (The mask rounds up to whole bytes per tensor.)"""
    kernel, args = get(name).kernel_args(params)
    mode = _resolve(kernel, tuple(args), memory)
    if mode == "mask":
        return 0.125
    if mode == "none":
        return 0.0
    return float(torch.empty((), dtype=dtype).element_size())


# ------------------------------------------------------------------ fake kernels


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


def mask_activation(x: torch.Tensor, act: str, params: list[float], inplace: bool) -> torch.Tensor:
    """f(x) keeping a 1-bit mask for backward (when x needs a gradient at all)."""
    if not (torch.is_grad_enabled() and x.requires_grad):
        if inplace:
            _ops.activation_(x, act, params)
            return x
        return _ops.activation(x, act, params)
    if not inplace:
        return _ops.activation_mask(x, act, params)[0]
    if torch.compiler.is_compiling():
        # As ops.activation_op: functionalization turns the mutation into out-of-place + copy.
        return x.copy_(_ops.activation_mask(x, act, params)[0])
    _ops.activation_mask_(x, act, params)  # autograd's in-place checks and node: mask_autograd.cpp
    return x
