"""Model-level benchmark: one training step (forward, backward, optimizer step) of a model
converted with ``fused_act.convert`` against the original torch model.

    python -m bench.model_step                      # everything, writes bench/results/model_step.{md,json}
    python -m bench.model_step --models mlp_sigmoid --modes eager --repeats 10

Models:
  * ``mlp_sigmoid`` / ``mlp_relu``: the deep MLP of ../shared/REPRODUCE.md E1 (784 -> six hidden
    Linear(512) + activation -> 10, batch 128), RMSprop(lr=1e-3, alpha=0.9, eps=1e-7) as there.
  * ``resnet18``, ``mobilenet_v3_small``: torchvision's (weights=None, 1000 classes), batch 8
    of 3x64x64, SGD with momentum 0.9. resnet18's ReLUs are ``inplace=True`` (converted ones
    stay in place); mobilenet has ReLU, Hardswish and Hardsigmoid.
  * ``transformer_mlp``: two pre-norm transformer MLP halves (LayerNorm, Linear 256 -> 1024,
    GELU, Linear 1024 -> 256, residual) on 8 x 128 tokens, AdamW.

Modes: ``eager`` and ``compile`` (``torch.compile(fullgraph=True)``, inductor). ``convert``
runs with its defaults: activations swapped, no ``Linear -> activation`` folded (``fold`` is
opt-in, docs/convert.md; the table's "folded layers" column counts folds). Under compile the model is converted with
``keep_inplace=False``: AOT autograd functionalises mutations and inductor plans the buffers, so
in-place buys nothing there.

Timing: both models start from the same weights; after ``--warmup`` steps of each, every
repeat times one step of the original then one of the converted model (interleaved, so load
from other processes hits both alike); the median and the interquartile range are reported.

Subnormals are flushed (``torch.set_flush_denormal(True)``) while timing. These fixed batches are
learnt in a few steps, and then gradients underflow: with subnormals kept, transformer_mlp's steps
5 to 13 took 0.2-2.1 s instead of ~40 ms on both sides (ATen's matmuls on subnormal operands;
2026-12-07, Intel Xeon), which made the upper quartiles of both columns ~15x the median. A real
training run does not sit in that state, so the step is timed as it runs outside it.

Memory, two figures, both for eager steps:
  * ``saved``: bytes autograd keeps between forward and backward, summed over distinct
    storages packed by ``torch.autograd.graph.saved_tensors_hooks``, parameters excluded
    (they are kept anyway). This is exact and what the fused kernels change: an activation
    whose backward works from its output saves nothing extra, an in-place one no input copy.
  * ``peak_rss``: the rise of the process's peak resident set size over three training steps
    (after one warm-up step that allocates the optimizer state), in a fresh subprocess per
    model and variant: the kernel's high-water mark (VmHWM) is reset by writing 5 to
    /proc/self/clear_refs, and VmHWM after the steps minus VmRSS before them is reported.
    It includes the allocator's caching, so it is coarser, but it is what a user sees.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch._inductor.metrics
from torch import nn

import fused_act  # noqa: F401  (registers the ops)
from fused_act.convert import convert
from fused_act.machine import isa_text

RESULTS = Path(__file__).resolve().parent / "results"


# ------------------------------------------------------------------ models


def mlp(act: type[nn.Module]) -> nn.Module:
    layers, width = [], 784
    for _ in range(6):
        layers += [nn.Linear(width, 512), act()]
        width = 512
    layers.append(nn.Linear(512, 10))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return x + self.body(x)


def mlp_block(d: int, hidden: int) -> nn.Module:
    """A transformer block's MLP half: x + Linear(GELU(Linear(LayerNorm(x))))."""
    return Residual(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)))


def make(name: str):
    """(model, input, target, optimizer factory) with fixed seeds."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    if name.startswith("mlp_"):
        act = {"mlp_sigmoid": nn.Sigmoid, "mlp_relu": nn.ReLU, "mlp_tanh": nn.Tanh}[name]
        model = mlp(act)
        x = torch.rand(128, 784, generator=g)
        y = torch.randint(0, 10, (128,), generator=g)
        opt = lambda p: torch.optim.RMSprop(p, lr=1e-3, alpha=0.9, eps=1e-7)  # noqa: E731
    elif name in ("resnet18", "mobilenet_v3_small"):
        import torchvision

        model = getattr(torchvision.models, name)(weights=None)
        x = torch.randn(8, 3, 64, 64, generator=g)
        y = torch.randint(0, 1000, (8,), generator=g)
        opt = lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9)  # noqa: E731
    elif name == "transformer_mlp":
        model = nn.Sequential(mlp_block(256, 1024), mlp_block(256, 1024), nn.Flatten(), nn.Linear(128 * 256, 10))
        x = torch.randn(8, 128, 256, generator=g)
        y = torch.randint(0, 10, (8,), generator=g)
        opt = lambda p: torch.optim.AdamW(p, lr=1e-3)  # noqa: E731
    else:
        raise ValueError(f"unknown model {name!r}")
    return model.train(), x, y, opt


def variants(name: str, mode: str, fold_norm: bool = False, fold: bool = False):
    """({'original': (model, compiled or model, optimizer), 'converted': ...}, x, y, what convert
    did: {'module': activations swapped, 'fold': layers folded}), from the same initial weights.
    fold_norm, fold: convert's options (BatchNorm -> activation folded into one
    fused_act.nn.BatchNorm2d; Linear / Conv2d -> activation into one fused_act.nn.Linear / Conv2d)."""
    model, x, y, opt = make(name)
    conv, report = convert(copy.deepcopy(model), keep_inplace=(mode == "eager"), fold_norm=fold_norm, fold=fold)
    what = {k: sum(r.kind == k for r in report.replaced) for k in ("module", "fold")}
    if mode == "compile":
        # Inductor's on-disk caches key a graph by its ops, not by how fused_act registered them:
        # a graph compiled by an earlier build (other op tags, so other layouts and copies around
        # our ops) would be reused, and this build never measured.
        torch._inductor.config.fx_graph_cache = False
        torch._functorch.config.enable_autograd_cache = False
    out = {}
    for label, m in (("original", model), ("converted", conv)):
        fwd = torch.compile(m, fullgraph=True) if mode == "compile" else m
        out[label] = (m, fwd, opt(m.parameters()))
    return out, x, y, what


def step(fwd, optimizer, x, y):
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(fwd(x), y)
    loss.backward()
    optimizer.step()
    return loss


# ------------------------------------------------------------------ measurements


def saved_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of distinct non-parameter storages autograd saves during one forward."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(storages.values())


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rss_child(name: str, label: str) -> None:
    """Run in a subprocess: print the rise of peak RSS (bytes) over three eager steps."""
    vs, x, y, _ = variants(name, "eager")
    for other in [k for k in vs if k != label]:
        del vs[other]
    m, fwd, opt = vs[label]
    import gc

    step(fwd, opt, x, y)  # allocates the optimizer state
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
    base = _status_kib("VmRSS")
    for _ in range(3):
        step(fwd, opt, x, y)
    print(json.dumps({"peak_rss_rise": (_status_kib("VmHWM") - base) * 1024}))


def peak_rss(name: str, label: str) -> int | None:
    r = subprocess.run(
        [sys.executable, "-m", "bench.model_step", "--rss-child", name, label],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if r.returncode != 0:
        print(r.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])["peak_rss_rise"]


def fused_act_calls(fwd, opt, x, y) -> int:
    """fused_act kernels one step runs (forward and backward ops), counted by the profiler."""
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step(fwd, opt, x, y)
    return sum(e.count for e in prof.key_averages() if e.key.startswith("fused_act::") and "Backward" not in e.key)


def time_variants(vs: dict, x, y, mode: str, warmup: int, repeats: int) -> dict:
    """Median, IQR and minimum step time of each {label: (model, compiled or model, optimizer)},
    interleaved; under compile also inductor's kernel count and the fused_act calls per step."""
    kernels = {}
    for label, (m, fwd, opt) in vs.items():
        torch._inductor.metrics.reset()
        for _ in range(warmup):  # compile happens here
            step(fwd, opt, x, y)
        kernels[label] = torch._inductor.metrics.generated_kernel_count
    times = {k: [] for k in vs}
    for _ in range(repeats):
        for label, (m, fwd, opt) in vs.items():  # interleaved
            t0 = time.perf_counter()
            step(fwd, opt, x, y)
            times[label].append(time.perf_counter() - t0)
    res = {}
    for label, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) >= 4 else [min(ts), 0, max(ts)]
        res[label] = {
            "median_ms": 1e3 * statistics.median(ts),
            "q1_ms": 1e3 * q[0],
            "q3_ms": 1e3 * q[2],
            "min_ms": 1e3 * min(ts),
        }
        if mode == "compile":  # inductor's own kernels, forward + backward (+ optimizer), and ours beside them
            m, fwd, opt = vs[label]
            res[label]["inductor_kernels"] = kernels[label]
            res[label]["fused_act_calls"] = fused_act_calls(fwd, opt, x, y)
    return res


def time_steps(name: str, mode: str, warmup: int, repeats: int, fold_norm: bool = False, fold: bool = False) -> dict:
    vs, x, y, what = variants(name, mode, fold_norm, fold)
    res = time_variants(vs, x, y, mode, warmup, repeats)
    if mode == "eager":
        for label, (m, fwd, opt) in vs.items():
            res[label]["saved_bytes"] = saved_bytes(m, x)
    torch._dynamo.reset()
    res["converted"]["what"] = what
    return res


# ------------------------------------------------------------------ report


def mib(b):
    return "-" if b is None else f"{b / 2**20:.1f}"


def write(results: list[dict], machine: dict, args) -> None:
    """Writes the rows just measured, keeping earlier rows of other (model, mode) pairs from
    the existing json (so ``--modes eager`` does not erase the compile rows)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    old = RESULTS / "model_step.json"
    if old.exists():
        done = {(r["model"], r["mode"]) for r in results}
        try:
            kept = [r for r in json.loads(old.read_text())["results"] if (r["model"], r["mode"]) not in done]
        except (ValueError, KeyError):
            kept = []
        for r in kept:
            r.setdefault("note", "from an earlier run")
        results = kept + results
    (RESULTS / "model_step.json").write_text(
        json.dumps({"machine": machine, "args": vars(args), "results": results}, indent=2)
    )
    lines = [
        "# One training step: fused_act.convert(model"
        + (", fold_norm=True" if getattr(args, "fold_norm", False) else "")
        + (", fold=True" if getattr(args, "fold", False) else "")
        + ") vs the original",
        "",
        f"{machine.get('cpu_model', '?')}, {machine.get('torch_threads', '?')} threads, torch "
        f"{machine.get('torch', torch.__version__)}, {isa_text(machine)}, "
        f"commit {machine.get('git_commit', '?')}, {machine.get('date', '')}.",
        f"Median of {args.repeats} interleaved steps after {args.warmup} warm-up steps (IQR in brackets). "
        "`saved`: bytes autograd keeps for backward (parameters excluded); `peak RSS`: rise of the "
        "process's peak RSS over three eager steps in a fresh process. Subnormals flushed (the fixed batches "
        "are learnt and gradients underflow). See bench/model_step.py.",
        "",
        "| model | mode | converted: activations / folded layers | original ms median [IQR] "
        "| converted ms median [IQR] | speed-up (median) | min ms orig / conv | saved MiB orig | saved MiB conv "
        "| peak RSS MiB orig | peak RSS MiB conv |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        o, c = r["original"], r["converted"]
        what = c.get("what", {})
        lines.append(
            f"| {r['model']} | {r['mode']} | {what.get('module', '?')} / {what.get('fold', '?')} | "
            f"{o['median_ms']:.1f} [{o['q1_ms']:.1f}-{o['q3_ms']:.1f}] | "
            f"{c['median_ms']:.1f} [{c['q1_ms']:.1f}-{c['q3_ms']:.1f}] | {o['median_ms'] / c['median_ms']:.2f}x | "
            + (f"{o['min_ms']:.1f} / {c['min_ms']:.1f} | " if "min_ms" in o and "min_ms" in c else "- | ")
            + f"{mib(o.get('saved_bytes'))} | {mib(c.get('saved_bytes'))} | "
            f"{mib(o.get('peak_rss'))} | {mib(c.get('peak_rss'))} |"
        )
    compiled = [r for r in results if "inductor_kernels" in r["original"]]
    if compiled:
        counts = ", ".join(
            f"{r['model']} {r['original']['inductor_kernels']} / {r['converted']['inductor_kernels']} + "
            f"{r['converted'].get('fused_act_calls', '?')}"
            for r in compiled
        )
        lines += [
            "",
            "Under torch.compile, kernels per model (inductor's generated kernels when compiling forward, backward "
            f"and optimizer; original / converted + the fused_act ops one converted step calls): {counts}. "
            "A fused_act op is opaque to inductor (a registered custom op), so the pointwise work inductor fuses "
            "into a torch activation's loop (batch norm's normalization in training, the adds and multiplies "
            "around hardswish and hardsigmoid in mobilenet_v3, the backward's masks) runs in kernels of its own "
            "beside ours: where the converted count exceeds the original's, that is the extra memory traffic "
            "of the compile rows. Inductor's own code for the activation would remove it, but then the "
            "converted model would not run fused_act's kernels.",
        ]
    lines += [
        "",
        "Shared CPU: other processes may have been running; interleaving spreads their load over "
        "both columns, the IQR shows how much it varied.",
    ]
    (RESULTS / "model_step.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def describe_machine() -> dict:
    try:
        from bench.machine import describe

        return describe("cpu")
    except Exception as e:  # the machine description is bench's; never lose results over it
        return {"torch": torch.__version__, "note": f"bench.machine unavailable: {e}"}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp_sigmoid,mlp_relu,resnet18,mobilenet_v3_small,transformer_mlp")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--fold-norm", action="store_true", help="convert(..., fold_norm=True): BatchNorm + act fused")
    p.add_argument("--fold", action="store_true", help="convert(..., fold=True): Linear / Conv2d + act fused")
    p.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rss_child:
        return peak_rss_child(*args.rss_child)
    torch.set_flush_denormal(True)  # see "Subnormals" in the module docstring
    machine = describe_machine()
    results = []
    for name in args.models.split(","):
        for mode in args.modes.split(","):
            print(f"{name} {mode} ...", file=sys.stderr, flush=True)
            r = time_steps(name, mode, args.warmup, args.repeats, args.fold_norm, args.fold)
            if mode == "eager" and not args.no_rss:
                for label in ("original", "converted"):
                    r[label]["peak_rss"] = peak_rss(name, label)
            results.append({"model": name, "mode": mode, **r})
    write(results, machine, args)


if __name__ == "__main__":
    main()
