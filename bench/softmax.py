"""``python -m bench.softmax``: fused_act.softmax / log_softmax against torch's, forward and
forward+backward, on a few shapes (last dim and a middle dim), with bench.timing's interleaved
medians. Prints a markdown table; ``--out FILE`` also writes it.

    python -m bench.softmax                          # CPU (CUDA when available), float32 + bfloat16
    python -m bench.softmax --threads 1 --rounds 5 --out bench/results/softmax.md
    python -m bench.softmax --dtypes float32 --shapes 0 1 2   # the first three shapes only
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fused_act

from .timing import Runner, measure

# (shape, dim): last-dim rows (inner == 1) of a classifier's 10 classes, 32 (short attention),
# 256, 4096 and 65536, and a middle dim (inner > 1).
SHAPES = [
    ((65536, 10), -1),
    ((16384, 32), -1),
    ((4096, 256), -1),
    ((256, 4096), -1),
    ((16, 65536), -1),
    ((64, 128, 128), 1),
]
OPS = {"softmax": (fused_act.softmax, torch.softmax), "log_softmax": (fused_act.log_softmax, torch.log_softmax)}


def runners(name: str, mode: str, x: torch.Tensor, dim: int) -> dict[str, Runner]:
    ours, ref = OPS[name]
    if mode == "fwd":
        return {"fused": Runner(lambda: ours(x, dim)), "torch": Runner(lambda: ref(x, dim))}
    g = torch.randn_like(x)
    xg = x.detach().requires_grad_()

    def fwdbwd(f):
        return lambda: torch.autograd.grad(f(xg, dim), xg, g)

    return {"fused": Runner(fwdbwd(ours)), "torch": Runner(fwdbwd(ref))}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads (default: torch's); on a shared "
        "machine 1 avoids timing the wait for a descheduled second thread",
    )
    p.add_argument("--shapes", nargs="+", type=int, default=None, help="indices into SHAPES (default: all)")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    lines = [
        f"softmax on {args.device}, {torch.get_num_threads()} threads, cpu_isa "
        f"{fused_act.info()['cpu_isa']}; medians of interleaved calls, ratio = torch / fused (> 1: fused faster)",
        "",
        "| op | mode | dtype | shape | dim | fused ms | torch ms | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    print("\n".join(lines), flush=True)
    for dtype in args.dtypes:
        for shape, dim in [SHAPES[i] for i in args.shapes] if args.shapes is not None else SHAPES:
            x = torch.randn(shape, device=args.device).to(getattr(torch, dtype))
            for name in OPS:
                for mode in ("fwd", "fwdbwd"):
                    s = measure(runners(name, mode, x, dim), device=args.device, rounds=args.rounds)
                    f, t = s["fused"].median, s["torch"].median
                    line = (
                        f"| {name} | {mode} | {dtype} | {tuple(shape)} | {dim} | {f * 1e3:.3f} | {t * 1e3:.3f} "
                        f"| {t / f:.2f} |"
                    )
                    print(line, flush=True)
                    lines.append(line)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
