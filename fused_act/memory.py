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
than it asked for. The mask ops themselves are in ``fused_act/ops/mask.py``.
"""

from __future__ import annotations

import functools

import torch

from . import _C
from .registry import get

__all__ = ["AUTO_PREFERS_MASK", "MEMORY_MODES", "memory_modes", "resolve_memory", "saved_bytes_per_element"]

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


@functools.lru_cache(maxsize=4096)
def _saved_for(act: str, params: tuple[float, ...]) -> str:
    return _C.saved_for(act, list(params))  # raises for bad parameters (not cached)


def _resolve(act: str, params: tuple[float, ...], memory: str) -> str:
    return _resolve_for(act, params, memory, AUTO_PREFERS_MASK)


# Cached: the eager memory="mask" path paid ~0.3 us per call deciding this (a 16-element relu
# forward is ~1.1 us). Rejected combinations raise and are not cached.
@functools.lru_cache(maxsize=4096)
def _resolve_for(act: str, params: tuple[float, ...], memory: str, prefers_mask: bool) -> str:
    saved = _saved_for(act, params)
    maskable = act in _maskable()
    if memory == "auto":
        return "mask" if maskable and prefers_mask else saved
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
