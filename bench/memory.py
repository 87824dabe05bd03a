"""Memory: bytes autograd keeps for backward, and peak device memory on CUDA.

On CPU there is no allocator to ask and RSS is blurred by the allocator's caching, so the
figure is the sum of the tensors autograd saves during forward, counted once per storage
(several saved views of one buffer, or x saved twice, cost one buffer). That is the
activation memory a network holds between forward and backward, per activation layer.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def saved_bytes(forward: Callable[[], torch.Tensor]) -> int:
    """Bytes of distinct storages saved for backward while ``forward()`` runs."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = forward()
    del y
    return sum(storages.values())


def cuda_peak_bytes(fn: Callable[[], object]) -> int:
    """Peak CUDA memory allocated by one call, above what was allocated before it."""
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    res = fn()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    del res
    return peak
