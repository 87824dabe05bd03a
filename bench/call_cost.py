"""``python -m bench.call_cost``: what one call costs, in microseconds, against ATen, at the
sizes where fixed costs dominate (16, 4,096 and 65,536 elements by default, and relu, sigmoid
and gelu on issue #10's shapes (128, 512) and (8, 512, 2, 2)).

For each activation and size, interleaved (bench/timing.py) in one run:
  fwd      forward without autograd: ``fused_act.<name>(x)`` vs the registry's reference
           composition (``torch.relu``, ``F.gelu``, ...);
  fwdbwd   forward + backward through autograd (``y.backward(g)`` on a leaf);
and the same for softmax, log_softmax, relu keeping a 1-bit mask, bias_act (gelu, the bias of a
Linear layer) and swiglu (``OTHER``).
The ratio eager / fused > 1 means fused_act is faster. Results go to a Markdown table
(``--out``, default bench/results/call_cost.md) with the machine description and issue #10's
targets checked (bench/step_targets.py), and the medians to the .json beside it, which
``python -m bench report`` reads for report.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

import fused_act
from fused_act.registry import ACTIVATIONS

from . import step_targets
from .machine import describe, isa_text
from .step_targets import forward_only_bound
from .timing import Runner, measure

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "call_cost.md"


def _bias_act(cols: int, trained: bool):
    b = torch.randn(cols, requires_grad=trained)  # a Linear layer's bias, trained in fwdbwd
    return lambda t: fused_act.bias_act(t, b, "gelu", dim=-1), lambda t: F.gelu(t + b)


def _swiglu(t: torch.Tensor) -> torch.Tensor:
    h = t.shape[-1] // 2
    return F.silu(t[..., :h]) * t[..., h:]


# Calls besides the activations, on rows of up to 256 elements: softmax's, the 1-bit mask's and
# the fusions' autograd is C++ like the activations' (a Python autograd kernel cost ~25 us per
# step). Each entry makes (fused, eager) for the row length and whether backward runs.
OTHER = {
    "softmax": lambda cols, bwd: (lambda t: fused_act.softmax(t, -1), lambda t: torch.softmax(t, -1)),
    "log_softmax": lambda cols, bwd: (lambda t: fused_act.log_softmax(t, -1), lambda t: torch.log_softmax(t, -1)),
    "relu memory=mask": lambda cols, bwd: (lambda t: fused_act.relu(t, memory="mask"), torch.relu),
    # parameters given: resolved once, then cached in C (csrc/python_functional.cpp)
    "leaky_relu(x, 0.2)": lambda cols, bwd: (lambda t: fused_act.leaky_relu(t, 0.2), lambda t: F.leaky_relu(t, 0.2)),
    "activation(x, elu, alpha=0.5)": lambda cols, bwd: (
        lambda t: fused_act.activation(t, "elu", alpha=0.5),
        lambda t: F.elu(t, 0.5),
    ),
    "nn.LeakyReLU(0.2)": lambda cols, bwd: (fused_act.nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
    "bias_act(gelu)": _bias_act,
    "swiglu": lambda cols, bwd: (fused_act.swiglu, _swiglu),
}


def functions(name: str, cols: int = 256, bwd: bool = False):
    """(fused, eager) callables for an activation of the registry or an OTHER entry."""
    if name in OTHER:
        return OTHER[name](cols, bwd)
    spec = ACTIVATIONS[name]
    params = dict(spec.params)
    return getattr(fused_act, name), lambda t: spec.reference(t, **params)


def shape_of(size: str) -> tuple[int, ...]:
    """An element count ("65536": rows of up to 256, softmax's dim) or a shape ("8x512x2x2")."""
    if "x" in size:
        return tuple(int(d) for d in size.split("x"))
    n = int(size)
    cols = min(n, 256)
    return (n // cols, cols)


def runners(name: str, size: str, mode: str) -> dict[str, Runner]:
    shape = shape_of(size)
    x = torch.randn(shape) * 2
    fused_fn, eager_fn = functions(name, shape[-1], mode == "fwdbwd")
    g = torch.randn(fused_fn(x.detach()).shape)  # swiglu's output is half as wide
    if mode == "fwd":
        return {"fused": Runner(lambda: fused_fn(x)), "eager": Runner(lambda: eager_fn(x))}
    leaf = x.clone().requires_grad_()

    def step(fn):
        def run():
            fn(leaf).backward(g)
            leaf.grad = None

        return run

    return {"fused": Runner(step(fused_fn)), "eager": Runner(step(eager_fn))}


def bound_table(medians: dict, sizes: list[str], names: list[str]) -> list[str]:
    """Every forward + backward row beside its forward-only bound (step_targets): a backward
    that only streams its operands (sigmoid's g y (1 - y), relu's select) runs at eager's speed,
    and the autograd engine's fixed cost (the 16-element rows: ~20 us) is the same on both
    sides, so a ratio above the bound needs a backward faster than eager's. Where eager's
    backward is compute-heavy (gelu's, elu's) ours can be faster and the ratio exceeds it."""
    out = []
    for n in sizes:
        for name in names:
            fwd, fb = medians.get(("fwd", n, name)), medians.get(("fwdbwd", n, name))
            bound = forward_only_bound(fwd, fb) if fwd and fb else None
            if bound is not None:
                out.append(f"| {n} | {name} | {fb[1] / fb[0]:.2f} | {bound:.2f} |")
    if not out:
        return []
    return [
        "Forward + backward against the forward-only bound: the ratio if fused_act's backward and autograd "
        "cost exactly eager's (eager fwdbwd / (eager fwdbwd - eager fwd + fused fwd); bench/step_targets.py, "
        "`forward_only_bound`). Below it, our backward or autograd costs more than eager's; above it, less.",
        "",
        "| elements | activation | eager / fused | bound |",
        "|---|---|---|---|",
        *out,
        "",
    ]


def machine_line() -> str:
    d = describe()
    return (
        f"{d['date']}, {d['cpu_model']}, {d['cpu_cores']} cores, {isa_text(d)}, "
        f"torch {d['torch']} ({d['torch_cpu_capability']}), {d['torch_threads']} threads, commit {d['git_commit']}"
    )


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", nargs="+", default=[*ACTIVATIONS, *OTHER])
    p.add_argument("--sizes", nargs="+", default=["16", "4096", "65536"], help="element counts")
    p.add_argument(
        "--shapes",
        nargs="*",
        default=list(step_targets.SHAPES),
        help="shapes like 8x512x2x2, for the activations of --shape-acts (none: skip)",
    )
    p.add_argument("--shape-acts", nargs="+", default=list(step_targets.SHAPE_ACTS))
    p.add_argument("--modes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shape_acts = [a for a in args.shape_acts if a in args.acts]
    plan = [(n, args.acts) for n in args.sizes] + [(s, shape_acts) for s in args.shapes]
    rows = []
    medians = {}  # (mode, size label, name) -> (fused us, eager us)
    ratios = {(m, n): [] for m in args.modes for n in args.sizes}
    for mode in args.modes:
        for n, names in plan:
            for name in names:
                s = measure(runners(name, n, mode), rounds=args.rounds, min_round_s=5e-3, max_calls=400)
                f, e = s["fused"].median * 1e6, s["eager"].median * 1e6
                medians[(mode, n, name)] = (f, e)
                if name in ACTIVATIONS and n in args.sizes:  # the means: the activations at each size
                    ratios[(mode, n)].append(e / f)
                rows.append(f"| {mode} | {n} | {name} | {f:.2f} | {e:.2f} | {e / f:.2f} |")
                print(rows[-1], flush=True)
    command = f"python -m bench.call_cost {' '.join(argv) if argv else ''}".strip()
    calls = step_targets.check_calls(medians)
    lines = [
        "# Per-call cost: fused_act vs eager PyTorch",
        "",
        f"`{command}`",
        "",
        machine_line(),
        "",
        "float32, contiguous input: an element count is rows of up to 256 elements (softmax's dim), "
        "a shape is that shape; medians of interleaved calls; eager / fused > 1: fused_act is faster.",
        "",
        "| mode | elements | activation | fused us | eager us | eager / fused |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Geometric means of eager / fused over the activations:",
        "",
        *[
            f"- {m}, {n} elements: {statistics.geometric_mean(r):.2f} (min {min(r):.2f})"
            for (m, n), r in ratios.items()
            if r
        ],
        "",
        "Issue #10's targets (bench/step_targets.py):",
        "",
        step_targets.render(calls, []) or "- none measured",
        "",
        *bound_table(medians, [n for n, _ in plan], args.acts),
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(
        json.dumps(
            {
                "machine": describe(),
                "command": command,
                "medians_us": [
                    {"mode": m, "size": n, "name": a, "fused": f, "eager": e} for (m, n, a), (f, e) in medians.items()
                ],
            },
            indent=1,
        )
    )
    print(f"wrote {args.out} and its .json")


def load_medians(path: Path) -> dict:
    """The (mode, size label, name) -> (fused us, eager us) medians main() saved."""
    rows = json.loads(path.read_text())["medians_us"]
    return {(r["mode"], r["size"], r["name"]): (r["fused"], r["eager"]) for r in rows}


if __name__ == "__main__":
    main()
