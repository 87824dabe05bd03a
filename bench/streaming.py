"""``python -m bench.streaming``: what the CPU loop's non-temporal stores buy, and where.

Memory-bound launches (every op of a functor in ``_C.memory_bound()``, kMemoryBound in
functor.h, and any backward from the output) that move at least the L3 size into pages already
mapped store their output past the caches (csrc/cpu/streaming.h). For each activation and
size, interleaved in one run: fused_act streaming every launch it may (any size, fresh pages
too), never, and by the default policy, and eager PyTorch, forward and forward + backward,
allocating (fresh outputs, as in training). gelu never streams (its backward needs x): a
control. Writes a Markdown table (``--out``, default bench/results/streaming.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import fused_act
from fused_act import _C
from fused_act.registry import ACTIVATIONS

from .call_cost import machine_line
from .timing import Runner, measure

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "streaming.md"


def runners(name: str, n: int, mode: str, default: tuple[int, bool]) -> dict[str, Runner]:
    spec = ACTIVATIONS[name]
    params = dict(spec.params)
    x = torch.randn(n) * 3
    g = torch.randn(n)
    fused = getattr(fused_act, name)

    def eager(t):
        return spec.reference(t, **params)

    def call(fn):
        if mode == "fwd":
            return lambda: fn(x)
        leaf = x.clone().requires_grad_()
        return lambda: torch.autograd.grad(fn(leaf), leaf, g)

    def policy(*p):
        return lambda: _C.set_cpu_streaming(*p)

    return {
        "stream": Runner(call(fused), setup=policy(1, True)),  # every launch, fresh pages too
        "normal": Runner(call(fused), setup=policy(0)),
        "default": Runner(call(fused), setup=policy(*default)),
        "eager": Runner(call(eager)),
    }


def streams(name: str, mode: str) -> str:
    """Which launches of the case may stream: every op of a memory-bound functor, and any
    backward from the output (csrc/cpu/activation_kernels.cpp, kStreams)."""
    kernel, args = ACTIVATIONS[name].kernel_args(ACTIVATIONS[name].params)
    if kernel in _C.memory_bound():
        return "all"
    return "backward" if mode == "fwdbwd" and _C.saved_for(kernel, args) == "output" else "none"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--acts", nargs="+", default=[*_C.memory_bound(), "sigmoid", "tanh", "logsigmoid", "gelu"])
    p.add_argument("--log2n", nargs="+", type=int, default=[20, 21, 22, 23, 24])
    p.add_argument("--modes", nargs="+", default=["fwd", "fwdbwd"], choices=["fwd", "fwdbwd"])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    default = _C.cpu_streaming()
    rows = []
    try:
        for mode in args.modes:
            for k in args.log2n:
                n = 1 << k
                for name in args.acts:
                    s = measure(runners(name, n, mode, default), rounds=args.rounds, min_round_s=2e-2, max_calls=50)
                    st, no, de, ea = (s[p].median * 1e3 for p in ("stream", "normal", "default", "eager"))
                    times = f"{st:.3f} | {no:.3f} | {de:.3f} | {ea:.3f}"
                    ratios = f"{no / st:.2f} | {ea / de:.2f} | {ea / no:.2f}"
                    rows.append(f"| {mode} | 2^{k} | {name} | {streams(name, mode)} | {times} | {ratios} |")
                    print(rows[-1], flush=True)
    finally:
        _C.set_cpu_streaming(*default)
    text = "\n".join(
        [
            "# Streaming (non-temporal) stores: fused_act with and without, against eager PyTorch",
            "",
            "`python -m bench.streaming`",
            "",
            machine_line(),
            "",
            "float32, 1-D contiguous, fresh outputs; medians of interleaved calls (ms). Providers: fused_act "
            "streaming every launch that may stream (`stream`: `_C.set_cpu_streaming(1, True)`), never "
            f"(`normal`), with the default policy (`default`: launches that move at least {default[0]} bytes, the "
            "L3 size, into pages already mapped; csrc/cpu/streaming.h), and eager PyTorch. `streams`: the "
            "launches that may stream (every op of a memory-bound functor, any backward from the output); where "
            "none may, the three fused columns time the same code.",
            "",
            "| mode | elements | activation | streams | stream ms | normal ms | default ms | eager ms | "
            "normal / stream | eager / default | eager / normal |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
