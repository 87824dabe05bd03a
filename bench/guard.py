"""Regression guard: fused_act must not be slower than eager PyTorch.

A few activations (the composite ones the targets name, plus relu / gelu / silu), one size,
forward and forward+backward, fused and eager timed in the same process. On CPU it runs on one
thread: with two threads on a shared 2-core machine every parallel region waits for a thread
the scheduler parked (a ~10 ms time slice), which swamps microsecond kernels; one thread is
preempted now and then, not every call.

Each round times both providers back to back (order alternating). Other processes only ever
add time to a call, so each round keeps its fastest call per provider (the op's cost when
nothing interfered), and the round's ratio is fused / eager of those; a case fails only when
fused is slower by more than ``margin`` in the median round AND slower in three rounds out of
four (the lower quartile of the ratios is above 1). Medians of per-call times moved ratios by
up to 1.4x between runs on this loaded machine; the per-round fastest calls move them by far
less, and a real regression (a kernel falling back to scalar code) costs 2x or more.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from .cases import COMPOSITE_ACTS, Case
from .providers import Tensors, build
from .timing import _time_cpu, _time_cuda

GUARD_ACTS = COMPOSITE_ACTS + ["relu", "gelu", "silu"]
MARGIN = 1.5


@dataclass
class Verdict:
    act: str
    mode: str
    fused_s: float
    eager_s: float
    ratio: float  # median over rounds of fused / eager
    ratio_q25: float
    ratio_q75: float

    def failed(self, margin: float) -> bool:
        return self.ratio > margin and self.ratio_q25 > 1.0


def run_guard(
    acts=None,
    modes=("fwd", "fwdbwd"),
    size: int = 1 << 20,
    rounds: int = 9,
    device: str | None = None,
    threads: int = 1,
    target_s: float = 5e-3,
) -> list[Verdict]:
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    threads0 = torch.get_num_threads()
    if device == "cpu":
        torch.set_num_threads(threads)
    timer = _time_cuda if device == "cuda" else _time_cpu
    out = []
    try:
        for act in acts or GUARD_ACTS:
            for mode in modes:
                case = Case(act, "float32", size, mode, "alloc", threads, device, ("fused", "eager"))
                t = Tensors(case)
                f, e = build("fused", case, t).runner, build("eager", case, t).runner
                # warm-up, and calls per round so that one round lasts about target_s
                calls = max(3, min(50, round(target_s / max(min(timer(f, 2) + timer(e, 2)), 1e-7))))
                ratios, fs, es = [], [], []
                for k in range(rounds):
                    pair = [(f, fs), (e, es)] if k % 2 == 0 else [(e, es), (f, fs)]
                    got = {}
                    for r, acc in pair:
                        got[id(r)] = min(timer(r, calls))
                        acc.append(got[id(r)])
                    ratios.append(got[id(f)] / got[id(e)])
                q = statistics.quantiles(ratios, n=4, method="inclusive")
                out.append(
                    Verdict(
                        act, mode, statistics.median(fs), statistics.median(es), statistics.median(ratios), q[0], q[2]
                    )
                )
    finally:
        torch.set_num_threads(threads0)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench guard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--acts", nargs="+", default=GUARD_ACTS)
    p.add_argument("--size", type=int, default=20, help="log2 of the element count")
    p.add_argument("--margin", type=float, default=MARGIN)
    p.add_argument("--rounds", type=int, default=9)
    a = p.parse_args(argv)
    t0 = time.time()
    verdicts = run_guard(a.acts, size=1 << a.size, rounds=a.rounds)
    bad = [v for v in verdicts if v.failed(a.margin)]
    for v in verdicts:
        flag = "FAIL" if v in bad else "ok"
        print(
            f"{flag:4} {v.act:18} {v.mode:6} fused {v.fused_s * 1e3:8.3f} ms  eager {v.eager_s * 1e3:8.3f} ms  "
            f"fused/eager {v.ratio:.2f} [{v.ratio_q25:.2f}, {v.ratio_q75:.2f}]"
        )
    print(f"{len(bad)} regression(s) beyond {a.margin}x, {time.time() - t0:.1f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
