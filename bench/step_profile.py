"""Where a converted model's training step spends its time, against the original's: the
profiler's self CPU time per op, per step, both models from bench.model_step, interleaved.

    python -m bench.step_profile                                   # mobilenet_v3_small, compile
    python -m bench.step_profile --model resnet18 --mode eager --rounds 10

It is the measurement behind a model-step miss (bench/results/model_step.md): the rows whose
time differs most between the two models say whether the gap is fused_act's own ops, the
kernels inductor generates around them (``inductor code``: the compiled graphs' self time,
which fuses less when a custom op sits between pointwise ops) or an unchanged ATen op running
slower (same call and shapes, other buffers: cache state). Writes
bench/results/step_profile_<model>_<mode>.md.
"""

from __future__ import annotations

import argparse
import collections
import sys

import torch

from bench.model_step import RESULTS, describe_machine, step, variants
from fused_act.machine import isa_text

INDUCTOR = "inductor code"


def op_name(key: str) -> str:
    """The profiler's event name, with the compiled graphs' hashes and dynamo's frame ids dropped
    so that the original's and the converted model's land on one row."""
    if key.startswith("## Call CompiledFxGraph"):
        return INDUCTOR
    if key.startswith("Torch-Compiled Region"):
        return "Torch-Compiled Region"
    return key


def self_times(prof) -> collections.Counter:
    """Self CPU microseconds per op of one profile."""
    acc = collections.Counter()
    for e in prof.key_averages():
        acc[op_name(e.key)] += e.self_cpu_time_total
    return acc


def table(orig: collections.Counter, conv: collections.Counter, steps: int, top: int = 15) -> list[str]:
    """Markdown rows: the ops whose per-step self time differs most, and the totals."""
    keys = sorted(set(orig) | set(conv), key=lambda k: -abs(conv[k] - orig[k]))[:top]
    ms = lambda us: us / 1e3 / steps  # noqa: E731
    lines = [
        "| op | original ms/step | converted ms/step | converted - original |",
        "|---|---|---|---|",
    ]
    for k in keys:
        lines.append(f"| {k} | {ms(orig[k]):.2f} | {ms(conv[k]):.2f} | {ms(conv[k] - orig[k]):+.2f} |")
    to, tc = sum(orig.values()), sum(conv.values())
    lines.append(f"| **all ops** | {ms(to):.2f} | {ms(tc):.2f} | {ms(tc - to):+.2f} |")
    return lines


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="mobilenet_v3_small")
    p.add_argument("--mode", default="compile", choices=("eager", "compile"))
    p.add_argument("--rounds", type=int, default=6, help="profiles of each model, alternating which goes first")
    p.add_argument("--steps", type=int, default=2, help="steps per profile")
    p.add_argument("--warmup", type=int, default=3)
    args = p.parse_args(argv)
    torch.set_flush_denormal(True)  # as bench.model_step times its steps (its docstring says why)

    vs, x, y, _ = variants(args.model, args.mode)
    for _m, fwd, opt in vs.values():
        for _ in range(args.warmup):
            step(fwd, opt, x, y)
    acc = {label: collections.Counter() for label in vs}
    order = list(vs.items())
    for r in range(args.rounds):
        for label, (_m, fwd, opt) in order if r % 2 == 0 else order[::-1]:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                for _ in range(args.steps):
                    step(fwd, opt, x, y)
            acc[label] += self_times(prof)
    steps = args.rounds * args.steps
    m = describe_machine()
    where = f"{m.get('cpu_model', '?')}, {isa_text(m)}, {m.get('date', '')}"
    lines = [
        f"# Self CPU time per op: {args.model}, {args.mode}, converted vs original",
        "",
        f"{where}, {torch.get_num_threads()} threads. `python -m bench.step_profile --model {args.model} "
        f"--mode {args.mode} --rounds {args.rounds} --steps {args.steps}`: {steps} profiled steps of each "
        "model, interleaved. The profiler adds its own cost to every op, so the totals exceed "
        "model_step.md's step times; the differences are what this table is for.",
        "",
        *table(acc["original"], acc["converted"], steps),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"step_profile_{args.model}_{args.mode}.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
