"""Fused ops against their eager compositions: forward + backward time and the bytes autograd
saves for backward.

    python -m bench.fusions                        # all cases, writes bench/results/fusions.{md,json}
    python -m bench.fusions --acts relu gelu --size 1024 --compile --out /tmp/f
    python -m bench.fusions --only batch_norm_act --compile   # batch norm + activation alone
    python -m bench.fusions --only bias_act --acts gelu --bn-acts gelu   # bias_act alone

Cases (float32, fwd+bwd = forward, then autograd.grad of every input, a fresh graph per call):
  * ``bias_act/<act>``: ``fused_act.bias_act(x, b, act)`` vs ``act(x + b)`` for every registered
    activation, x of (size, size), b of size (the issue's target: 1.5x at 4096 x 4096), and for the
    ``--bn-acts`` on the shapes of ``BIAS_SHAPES`` (convolution outputs and Linear outputs with
    few features, the bias along dim 1);
  * ``swiglu``, ``geglu``: ``fused_act.glu`` on x of (size, 2 size) vs ``F.silu(a) * b`` on the
    halves (views, no copy), and ``gated`` on two separate (size, size) tensors;
  * ``batch_norm_act/<act> <shape>``: ``fused_act.batch_norm_act`` in training vs
    ``act(F.batch_norm(x, ...))`` for the ``--bn-acts``, on the NCHW shapes of
    mobilenet_v3_small's batch norms at batch 8 and 64 x 64 images (bench.model_step's model)
    and one ResNet-sized one;
Timing is bench/timing.py's (providers interleaved round by round, medians); memory is
bench/memory.py's saved_bytes (distinct storages packed for backward).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import fused_act
from fused_act.registry import ACTIVATIONS

from .machine import describe as describe_machine
from .memory import saved_bytes
from .timing import Runner, measure

RESULTS = Path(__file__).resolve().parent / "results"


def fwd_bwd(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], grad: torch.Tensor) -> Callable[[], object]:
    def run():
        return torch.autograd.grad(fn(*inputs), inputs, grad)

    return run


# Rows the CPU front widens (docs/fusions.md), and longer ones: (N, C, H, W) convolution outputs with
# few pixels per channel late in a network (2 x 2, 3 x 3), then more; Linear outputs with few features.
BIAS_SHAPES = [(64, 512, 2, 2), (8, 256, 3, 3), (32, 64, 7, 7), (8, 64, 14, 14), (65536, 10), (4096, 3)]


def bias_act_case(name: str, shape: tuple[int, ...]):
    spec = ACTIVATIONS[name]
    x = torch.randn(shape, requires_grad=True)
    b = torch.randn(shape[1], requires_grad=True)
    g = torch.randn(shape)
    view = [1, -1] + [1] * (len(shape) - 2)
    fused = lambda x, b: fused_act.bias_act(x, b, name, dim=1)  # noqa: E731
    eager = lambda x, b: spec.reference(x + b.view(view), **spec.params)  # noqa: E731
    return {"fused": fused, "eager": eager}, [x, b], g


def glu_case(act: str, size: int, params: dict, separate: bool):
    ref = ACTIVATIONS[act].reference
    g = torch.randn(size, size)
    if separate:
        a = torch.randn(size, size, requires_grad=True)
        u = torch.randn(size, size, requires_grad=True)
        fused = lambda a, u: fused_act.gated(a, u, act, **params)  # noqa: E731
        eager = lambda a, u: ref(a, **params) * u  # noqa: E731
        return {"fused": fused, "eager": eager}, [a, u], g
    x = torch.randn(size, 2 * size, requires_grad=True)

    def eager(x):
        a, u = x.chunk(2, -1)
        return ref(a, **params) * u

    fused = lambda x: fused_act.glu(x, act, gate="first", **params)  # noqa: E731
    return {"fused": fused, "eager": eager}, [x], g


# (N, C, H, W): mobilenet_v3_small's first, a middle and its last batch norms at batch 8, 64 x 64
# (bench.model_step), then a ResNet-50 stage-1 size at batch 8.
BN_SHAPES = [(8, 16, 32, 32), (8, 88, 8, 8), (8, 576, 2, 2), (8, 256, 56, 56)]


def batch_norm_case(name: str, shape: tuple[int, ...]):
    spec = ACTIVATIONS[name]
    c = shape[1]
    x = torch.randn(shape, requires_grad=True)
    w = torch.rand(c, requires_grad=True)
    b = torch.randn(c, requires_grad=True)
    g = torch.randn(shape)
    stats = {k: (torch.zeros(c), torch.ones(c)) for k in ("fused", "eager", "compile")}

    def fused(x, w, b):
        return fused_act.batch_norm_act(x, *stats["fused"], w, b, True, 0.1, 1e-5, name)

    def composition(key):
        return lambda x, w, b: spec.reference(F.batch_norm(x, *stats[key], w, b, True, 0.1, 1e-5), **spec.params)

    return {"fused": fused, "eager": composition("eager"), "compile": composition("compile")}, [x, w, b], g


def cases(acts: list[str], size: int, bn_acts: list[str], only: str | None):
    if only in (None, "batch_norm_act"):
        for name in bn_acts:
            for shape in BN_SHAPES:
                yield f"batch_norm_act/{name} {shape}", lambda name=name, shape=shape: batch_norm_case(name, shape)
    if only == "batch_norm_act":
        return
    for name in acts:
        yield f"bias_act/{name}", lambda name=name: bias_act_case(name, (size, size))
    for name in bn_acts:
        for shape in BIAS_SHAPES:
            yield f"bias_act/{name} {shape}", lambda name=name, shape=shape: bias_act_case(name, shape)
    if only == "bias_act":
        return
    yield "swiglu (halves of one x)", lambda: glu_case("silu", size, {}, False)
    yield "swiglu (gated, two tensors)", lambda: glu_case("silu", size, {}, True)
    yield "geglu (halves of one x)", lambda: glu_case("gelu", size, {"approximate": "none"}, False)
    yield "geglu tanh (halves of one x)", lambda: glu_case("gelu", size, {"approximate": "tanh"}, False)


def run(acts: list[str], size: int, use_compile: bool, rounds: int, bn_acts: list[str], only: str | None) -> list[dict]:
    rows = []
    todo = list(cases(acts, size, bn_acts, only))
    for label, make in tqdm(todo, desc="fusions", file=sys.stderr):
        fns, inputs, grad = make()
        compiled = fns.pop("compile", None)
        if use_compile:
            torch._dynamo.reset()
            fns["compile"] = torch.compile(compiled or fns["eager"], fullgraph=True)
            fwd_bwd(fns["compile"], inputs, grad)()  # compile outside the clock
        runners = {k: Runner(fwd_bwd(f, inputs, grad)) for k, f in fns.items()}
        stats = measure(runners, rounds=rounds)
        row = {"case": label, "size": size}
        for k, s in stats.items():
            row[f"{k}_s"] = s.median
            row[f"{k}_saved_bytes"] = saved_bytes(lambda f=fns[k]: f(*inputs))
        row["speedup_vs_eager"] = row["eager_s"] / row["fused_s"]
        if use_compile:
            row["speedup_vs_compile"] = row["compile_s"] / row["fused_s"]
        rows.append(row)
    return rows


def write(rows: list[dict], out: Path, args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    (out / "fusions.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=1))
    compiled = "compile_s" in rows[0]
    head = "| case | fused ms | eager ms | eager / fused |" + (" compile ms | compile / fused |" if compiled else "")
    head += " saved MiB fused | saved MiB eager |"
    lines = [
        "# Fused ops vs eager compositions (float32, forward + backward)",
        "",
        f"Measured by `python -m bench.fusions {' '.join(sys.argv[1:])}` on {machine['cpu_model']}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}. Medians of {args.rounds} interleaved rounds; "
        "saved = bytes autograd keeps for backward.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in rows:
        cells = [r["case"], f"{r['fused_s'] * 1e3:.3f}", f"{r['eager_s'] * 1e3:.3f}", f"{r['speedup_vs_eager']:.2f}x"]
        if compiled:
            cells += [f"{r['compile_s'] * 1e3:.3f}", f"{r['speedup_vs_compile']:.2f}x"]
        cells += [f"{r['fused_saved_bytes'] / 2**20:.0f}", f"{r['eager_saved_bytes'] / 2**20:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    (out / "fusions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.fusions", description=__doc__.split("\n")[0])
    p.add_argument("--acts", nargs="+", default=list(ACTIVATIONS), choices=list(ACTIVATIONS))
    p.add_argument("--size", type=int, default=4096, help="x is (size, size); default 4096")
    p.add_argument("--compile", action="store_true", help="also torch.compile (inductor) of the eager composition")
    p.add_argument("--bn-acts", nargs="+", default=["relu", "hardswish"], choices=list(ACTIVATIONS))
    p.add_argument("--only", choices=["batch_norm_act", "bias_act"], help="run only these cases")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    write(run(args.acts, args.size, args.compile, args.rounds, args.bn_acts, args.only), args.out, args)


if __name__ == "__main__":
    main()
