"""``python -m bench.layouts``: an activation's backward on operands in different layouts, the
case inductor's CPU convolutions make in a compiled CNN (a gradient written NCHW, the saved
tensor channels-last) and a channels-last model in eager mode meets too.

For each shape of mobilenet_v3_small's activations (batch 8, 3x64x64 input), activation and
direction, interleaved (bench/timing.py) in one run, the backward alone through autograd
(``torch.autograd.grad(y, x, g, retain_graph=True)`` on a graph recorded once, x in the saved
layout, g in the other):
  mixed    fused_act's graph node: ``activation_backward`` relays out g to the saved tensor's
           layout (csrc/ops/front.cpp, copy_into), then its loop runs;
  same     the same with g already in that layout (what the relayout adds is mixed - same);
  eager    the registry's torch composition on the same pair (ATen's backward);
  copy_    ATen's ``copy_`` of g into the other layout: the relayout fused_act did through ATen
           before its batched transpose.
Writes a Markdown table (``--out``, default bench/results/layouts.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fused_act
from fused_act.registry import ACTIVATIONS

from .call_cost import machine_line
from .timing import Runner, measure

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "layouts.md"
SHAPES = ["8x16x32x32", "8x72x16x16", "8x96x8x8", "8x240x4x4", "8x576x2x2"]
CL = torch.channels_last
DIRECTIONS = {
    "grad NCHW, saved channels-last": (torch.contiguous_format, CL),
    "grad channels-last, saved NCHW": (CL, torch.contiguous_format),
}


def runners(name: str, shape: tuple[int, ...], grad_format, saved_format) -> dict[str, Runner]:
    spec = ACTIVATIONS[name]
    params = dict(spec.params)
    x = torch.randn(shape).contiguous(memory_format=saved_format).requires_grad_()
    g = torch.randn(shape).contiguous(memory_format=grad_format)
    g_saved = g.contiguous(memory_format=saved_format)
    y_fused, y_eager = getattr(fused_act, name)(x), spec.reference(x, **params)

    def backward(y, grad):
        return Runner(lambda: torch.autograd.grad(y, x, grad, retain_graph=True))

    return {
        "mixed": backward(y_fused, g),
        "same": backward(y_fused, g_saved),
        "eager": backward(y_eager, g),
        "copy_": Runner(lambda: torch.empty_like(g_saved).copy_(g)),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", nargs="+", default=["hardswish", "relu"], choices=sorted(ACTIVATIONS))
    p.add_argument("--shapes", nargs="+", default=SHAPES)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    # one case timed and dropped: a process's first timings here ran up to 2x slower (eager's 138
    # against 64 us in later runs of the same case)
    first = tuple(int(s) for s in args.shapes[0].split("x"))
    measure(runners(args.acts[0], first, *next(iter(DIRECTIONS.values()))), rounds=2)
    for shape_text in args.shapes:
        shape = tuple(int(s) for s in shape_text.split("x"))
        for name in args.acts:
            for direction, (gf, sf) in DIRECTIONS.items():
                s = measure(runners(name, shape, gf, sf), rounds=args.rounds, min_round_s=5e-3, max_calls=400)
                us = {k: v.median * 1e6 for k, v in s.items()}
                rows.append(
                    f"| {shape_text} | {name} | {direction} | {us['mixed']:.1f} | {us['same']:.1f} | "
                    f"{us['eager']:.1f} | {us['copy_']:.1f} | {us['eager'] / us['mixed']:.2f} |"
                )
                print(rows[-1], flush=True)
    command = f"python -m bench.layouts {' '.join(argv) if argv else ''}".strip()
    lines = [
        "# An activation's backward on operands in different layouts",
        "",
        f"`{command}`",
        "",
        machine_line(),
        "",
        "float32, microseconds per backward (`autograd.grad` on a recorded graph, medians of interleaved "
        "calls). mixed: fused_act with the gradient in the other layout; same: with it in the saved "
        "tensor's; eager: the torch composition on the mixed pair; copy_: ATen's copy_ of the gradient "
        "into the saved tensor's layout. eager / mixed > 1: fused_act is faster.",
        "",
        "| shape | activation | layouts | mixed us | same us | eager us | copy_ us | eager / mixed |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
