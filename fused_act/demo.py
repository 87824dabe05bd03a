"""Quick look at this machine: for every activation, the largest difference from torch's
float64 reference and the speed-up of forward+backward over eager PyTorch.

    python -m fused_act.demo [--numel 4194304] [--dtype float32] [--repeats 41]

For the full methodology (copy-bandwidth limit, torch.compile, sizes, memory) use bench/.
"""

from __future__ import annotations

import argparse
import time

import torch

import fused_act
from fused_act.registry import ACTIVATIONS


def _paired_times(fns, repeats: int) -> list[list[float]]:
    """Per-round times of each function, the functions taking turns in every round (a shared
    machine's load then falls on all of them alike), in reversed order every other round (so that
    neither always runs first, after the other's frees and into its cache state)."""
    for fn in fns:
        fn()  # warm-up
    times = [[] for _ in fns]
    for r in range(repeats):
        order = list(zip(fns, times))
        for fn, ts in order if r % 2 == 0 else reversed(order):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return times


def _quartiles(v: list[float]) -> tuple[float, float, float]:
    s = sorted(v)
    return s[len(s) // 4], s[len(s) // 2], s[(3 * len(s)) // 4]


def _speedup(eager: list[float], fused: list[float]) -> str:
    """Median of the rounds' eager / fused ratios with their quartiles; "tie" where the middle
    half of the rounds holds 1.0. Paired ratios cancel the load drifting between rounds; at 2^22
    floats the memory-bound activations sit at the memory limit on both sides, and their ratio of
    medians moved between 0.95x and 1.05x from run to run (2-core Intel Xeon, 2026-12-07)."""
    lo, mid, hi = _quartiles([e / f for e, f in zip(eager, fused)])
    return f"{mid:7.2f}x  [{lo:.2f}-{hi:.2f}]" + ("  tie" if lo <= 1.0 <= hi else "")


def _fwd_bwd(f, x, g):
    def run():
        xs = x.detach().requires_grad_()
        f(xs).backward(g)

    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=1 << 22)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"])
    ap.add_argument("--repeats", type=int, default=41)
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    info = fused_act.info()
    print(
        f"fused_act {info['fused_act']}  torch {info['torch']}  CPU kernels: {info['cpu_isa']} "
        f"({info['cpu_threads']} threads)  CUDA kernels built: {info['cuda_kernels_built']}"
    )
    print(
        f"{args.numel} elements, {args.dtype}, forward+backward, {args.repeats} interleaved rounds: median times, "
        "and the median of the rounds' eager / fused ratios\n"
    )
    print(
        f"{'activation':18s} {'max |fwd err|':>14s} {'max |bwd err|':>14s} {'eager ms':>9s} "
        f"{'fused ms':>9s} {'speed-up [quartiles over rounds]':>8s}"
    )
    torch.manual_seed(0)
    check = (torch.randn(1 << 16, dtype=torch.float64) * 4).to(dtype)
    x = (torch.randn(args.numel) * 3).to(dtype)
    g = torch.randn(args.numel).to(dtype)
    for name, spec in ACTIVATIONS.items():
        xs = check.clone().requires_grad_()
        y = fused_act.activation(xs, name)
        (dx,) = torch.autograd.grad(y.sum(), xs)
        x64 = check.double().requires_grad_()
        r = spec.reference(x64, **spec.params)
        (dr,) = torch.autograd.grad(r.sum(), x64)
        fwd_err = (y.double() - r).abs().max().item()
        bwd_err = (dx.double() - dr).abs().max().item()
        eager, fused = _paired_times(
            [
                _fwd_bwd(lambda t: spec.reference(t, **spec.params), x, g),
                _fwd_bwd(lambda t: fused_act.activation(t, name), x, g),
            ],
            args.repeats,
        )
        print(
            f"{name:18s} {fwd_err:14.2e} {bwd_err:14.2e} {_quartiles(eager)[1] * 1e3:9.2f} "
            f"{_quartiles(fused)[1] * 1e3:9.2f} {_speedup(eager, fused)}"
        )


if __name__ == "__main__":
    main()
