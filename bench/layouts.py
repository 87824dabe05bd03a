"""``python -m bench.layouts``: an activation's backward on operands in different layouts, the
case inductor's CPU convolutions make in a compiled CNN (a gradient written NCHW, the saved
tensor channels-last) and a channels-last model in eager mode meets too.

For each shape of mobilenet_v3_small's activations (batch 8, 3x64x64 input), activation and
direction, interleaved (bench/timing.py) in one run:
  mixed    ``torch.ops.fused_act.activation_backward`` on the pair: the gradient is relaid out
           to the saved tensor's layout (csrc/ops/front.cpp, copy_into), then the loop runs;
  same     the same op with both operands in one layout (what the relayout adds is mixed - same);
  eager    ATen's backward (``hardswish_backward``, ``threshold_backward``) on the same pair;
  copy_    ATen's ``copy_`` of the gradient into the other layout: the relayout fused_act did
           through ATen before its batched transpose.
Writes a Markdown table (``--out``, default bench/results/layouts.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fused_act

from .machine import describe
from .timing import Runner, measure

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "layouts.md"
SHAPES = ["8x16x32x32", "8x72x16x16", "8x96x8x8", "8x240x4x4", "8x576x2x2"]
aten = torch.ops.aten
EAGER = {
    "hardswish": lambda g, s: aten.hardswish_backward.default(g, s),
    "relu": lambda g, s: aten.threshold_backward.default(g, s, 0.0),
    "sigmoid": lambda g, s: aten.sigmoid_backward.default(g, s),
    "tanh": lambda g, s: aten.tanh_backward.default(g, s),
}
CL = torch.channels_last
DIRECTIONS = {
    "grad NCHW, saved channels-last": (torch.contiguous_format, CL),
    "grad channels-last, saved NCHW": (CL, torch.contiguous_format),
}


def runners(name: str, shape: tuple[int, ...], grad_format, saved_format) -> dict[str, Runner]:
    x = torch.randn(shape)
    from_output = fused_act._C.saved_for(name, []) != "input"
    saved = (fused_act.ACTIVATIONS[name].reference(x) if from_output else x).contiguous(memory_format=saved_format)
    saved_as_grad = saved.contiguous(memory_format=grad_format)
    g = torch.randn(shape).contiguous(memory_format=grad_format)
    backward = torch.ops.fused_act.activation_backward.default
    return {
        "mixed": Runner(lambda: backward(g, saved, name, [], from_output)),
        "same": Runner(lambda: backward(g, saved_as_grad, name, [], from_output)),
        "eager": Runner(lambda: EAGER[name](g, saved)),
        "copy_": Runner(lambda: torch.empty_like(saved).copy_(g)),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", nargs="+", default=["hardswish", "relu"], choices=sorted(EAGER))
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
    d = describe()
    command = f"python -m bench.layouts {' '.join(argv) if argv else ''}".strip()
    lines = [
        "# An activation's backward on operands in different layouts",
        "",
        f"`{command}`",
        "",
        f"{d['date']}, {d['cpu_model']}, {d['cpu_cores']} cores, fused_act ISA {d['cpu_isa']}, torch {d['torch']}, "
        f"{d['torch_threads']} threads, commit {d['git_commit']}",
        "",
        "float32, microseconds per call (medians of interleaved calls through torch.ops). mixed: the op on "
        "the pair; same: the op with both operands in one layout; eager: ATen's backward on the pair; copy_: "
        "ATen's copy_ of the gradient into the saved tensor's layout. eager / mixed > 1: fused_act is faster.",
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
