"""Timing: every call timed on its own, providers interleaved round by round.

On a shared machine the load drifts over seconds, so the providers of one case take turns
within each round (in orders balanced for position and predecessor, ``balanced_orders``) and
the report compares medians measured side by side. Each call may have an untimed ``setup``
(refilling an in-place buffer), and the result is released after the clock stops, so freeing a
big output is not timed (its page faults on allocation are: that is what a fresh output costs).

On CUDA each call is bracketed by CUDA events on the current stream (setup's kernels are
queued before the start event), and the host synchronizes once per provider per round.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass
class Runner:
    fn: Callable[[], object]
    setup: Callable[[], object] | None = None


@dataclass
class Stats:
    median: float
    q25: float
    q75: float
    n: int
    min: float  # the fastest call: what the op costs when no other process got in the way

    @classmethod
    def of(cls, samples: list[float]) -> Stats:
        s = sorted(samples)
        if len(s) == 1:
            return cls(s[0], s[0], s[0], 1, s[0])
        q = statistics.quantiles(s, n=4, method="inclusive")
        return cls(statistics.median(s), q[0], q[2], len(s), s[0])


def _time_cpu(r: Runner, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        if r.setup is not None:
            r.setup()
        t0 = time.perf_counter()
        res = r.fn()
        t1 = time.perf_counter()
        del res
        out.append(t1 - t0)
    return out


def _time_cuda(r: Runner, calls: int) -> list[float]:
    events = []
    for _ in range(calls):
        if r.setup is not None:
            r.setup()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        res = r.fn()
        end.record()
        del res
        events.append((start, end))
    torch.cuda.synchronize()
    return [s.elapsed_time(e) / 1e3 for s, e in events]


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of n runners (a Williams design) in which, over all of them, every runner takes
    every position equally often and runs right after every other runner equally often: n orders
    for even n, 2n for odd n (``measure`` has the measurement that asked for it)."""
    first, lo, hi = [0], 1, n - 1
    while len(first) < n:  # 0, 1, n-1, 2, n-2, ...
        first.append(lo)
        lo += 1
        if len(first) < n:
            first.append(hi)
            hi -= 1
    rows = [[(i + j) % n for j in first] for i in range(n)]
    return rows if n % 2 == 0 else rows + [r[::-1] for r in rows]


def measure(
    runners: dict[str, Runner],
    device: str = "cpu",
    rounds: int = 7,
    warmup: int = 2,
    min_round_s: float = 2e-3,
    max_calls: int = 200,
) -> dict[str, Stats]:
    """Median and quartiles of per-call times (seconds) for each runner.

    Each runner is warmed up, then every runner is called ``calls`` times per round, ``calls``
    chosen from the warm-up so that a round of the fastest runner lasts about ``min_round_s``
    (many samples for microsecond ops, one per round for big ones). The count is the same for
    all: a runner called once per round always runs right after another runner's frees, with
    cold caches and fresh pages, while one called 4 times runs 3 of them warm; with per-runner
    counts that alone made fused relu's 2^20 forward + backward read 0.33x eager in one run
    (0.61 against 0.44 ms at best) where an interleaved loop of single calls gave 1.05x.

    The rounds go through ``balanced_orders``, their number rounded up to whole cycles of it.
    The order used to rotate, which keeps the cycle: each runner always ran right after the same
    other one (fused after ``clone``, eager after fused), and the slot decided memory-bound
    verdicts. At 2^20 and 2^22 floats, forward + backward (2 threads, Intel Xeon AVX-512,
    2026-12-07, two runs of each listing), eager / fused for relu, leaky_relu, hardtanh and
    hardswish read 0.84x-0.97x at 2^22 with the providers listed ``fused eager`` and 0.99x-1.15x
    listed ``eager fused``; an untimed call of the runner itself before each turn did not change
    that (0.92x-0.97x / 0.98x-1.11x), the balanced orders did (0.89x-1.12x / 0.95x-1.23x, no
    direction: ties within the noise of single 2 ms calls). The same ``torch.relu`` listed twice
    read up to 10% apart by slot. Why a slot costs is not pinned down: page faults per call of
    one forward + backward at 2^22 ranged from 0 to ~7,700 between processes and slots (glibc's
    heap grows, trims and maps afresh depending on the order of earlier frees), which is also
    most of these sizes' noise."""
    timer = _time_cuda if device == "cuda" else _time_cpu
    fastest = min(min(timer(r, max(warmup, 1))) for r in runners.values())
    calls = dict.fromkeys(runners, max(1, min(max_calls, math.ceil(min_round_s / max(fastest, 1e-7)))))
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    orders = balanced_orders(len(names))
    rounds = math.ceil(rounds / len(orders)) * len(orders)  # whole cycles: the balance needs them
    gc_was = gc.isenabled()
    gc.disable()  # a collection in the middle of a timed call is noise, not the op
    try:
        for k in range(rounds):
            order = [names[i] for i in orders[k % len(orders)]]
            for name in order:
                samples[name] += timer(runners[name], calls[name])
    finally:
        if gc_was:
            gc.enable()
    return {name: Stats.of(s) for name, s in samples.items()}


def time_once(fn: Callable[[], object], device: str = "cpu") -> float:
    """Wall time of one call, synchronized: used for compile time (the first call)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    res = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    del res
    return time.perf_counter() - t0
