"""Forward + backward time of each memory mode (fused_act/memory.py) against eager torch,
and the bytes backward keeps. Chooses fused_act.memory.AUTO_PREFERS_MASK:

    PYTHONPATH=. python -m bench.memory_modes                 # relu, float32, 2^24
    PYTHONPATH=. python -m bench.memory_modes --acts relu hardsigmoid --log2n 22 --reps 21

Providers run round-robin (one call of each per round), so drift in the machine's load hits
all of them alike; medians over the rounds, and ratios to memory="output" from the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import fused_act
from fused_act.registry import ACTIVATIONS


def fwd_bwd(fn, x, g):
    y = fn(x)
    torch.autograd.grad(y, x, g)


def providers(name: str) -> dict:
    spec = ACTIVATIONS[name]
    out = {
        f"fused memory={m!r}": (lambda t, m=m: fused_act.activation(t, name, memory=m))
        for m in fused_act.memory_modes(name)
        if m != "auto"
    }
    out["eager torch"] = lambda t: spec.reference(t, **spec.params)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--acts", nargs="+", default=["relu"])
    ap.add_argument("--log2n", type=int, default=24)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--reps", type=int, default=15)
    a = ap.parse_args()
    dtype = getattr(torch, a.dtype)
    n = 1 << a.log2n
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu_isa {fused_act.info()['cpu_isa']}, "
        f"n = 2^{a.log2n}, {a.dtype}, {a.reps} rounds, forward + backward"
    )
    for name in a.acts:
        x = torch.randn(n, dtype=dtype).requires_grad_()
        g = torch.randn(n, dtype=dtype)
        fns = providers(name)
        times = {k: [] for k in fns}
        for k, f in fns.items():  # warm-up
            fwd_bwd(f, x, g)
        for _ in range(a.reps):
            for k, f in fns.items():
                t0 = time.perf_counter()
                fwd_bwd(f, x, g)
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        base = med.get("fused memory='output'") or med.get("fused memory='input'")
        print(f"\n{name}:")
        print(f"  {'provider':<26} {'median ms':>10} {'vs full':>8} {'saved B/elem':>13}")
        for k, v in med.items():
            mode = k.split("'")[1] if "'" in k else None
            saved = fused_act.saved_bytes_per_element(name, dtype, mode) if mode else float("nan")
            print(f"  {k:<26} {v * 1e3:>10.2f} {v / base:>8.3f} {saved:>13.3f}")


if __name__ == "__main__":
    main()
