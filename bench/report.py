"""Markdown report from a run's results.json: machine, targets, the tables and the plots."""

from __future__ import annotations

import json
from pathlib import Path

from . import plots, step_targets
from .cases import MODES, VARIANTS
from .targets import EAGER_MIN, INPLACE_COMPUTE_EAGER_MIN, INPLACE_MAX, LIMIT_MAX, SIZE, Index, check


def _ms(s):
    return "" if s is None else f"{s * 1e3:.3g}" if s * 1e3 < 100 else f"{s * 1e3:.0f}"


def _x(v, digits=2):
    return "" if v is None else f"{v:.{digits}f}x"


def _size(n):
    return f"2^{n.bit_length() - 1}"


def _mib(b):
    return "" if b is None else f"{b / 2**20:.0f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _machine(meta):
    keys = [
        "date",
        "git_commit",
        "cpu_model",
        "cpu_cores",
        "cpu_isa",
        "isa_limits",
        "torch_threads",
        "gpu",
        "gpu_sm",
        "gpu_memory_gib",
        "gpu_peak_bandwidth_gbs",
        "torch",
        "torch_cuda",
        "cuda_kernels_built",
        "python",
        "rounds",
        "warmup",
        "wall_s",
        "load_start",
        "load_end",
    ]
    return _table(["", ""], [[k, meta.get(k)] for k in keys if meta.get(k) not in (None, "")])


def _targets(checks, threads, device):
    if not checks:
        return "_No float32 2^24 forward+backward cases in this run: targets not evaluated._"
    rows = []
    for c in checks:
        rows.append(
            [
                c["act"],
                f"{c['fused_ms']:.3g}",
                _x(c["limit_alloc"]),
                _x(c["limit_inplace"]),
                _x(c["eager_speedup"]),
                _x(c["compile_speedup"]),
                _x(c["limit_one_thread"]),
                "yes" if not c["miss"] else "**no**",
                " / ".join(
                    _x(c[k]) or "-"
                    for k in ("min_limit_alloc", "min_limit_inplace", "min_eager_speedup", "min_compile_speedup")
                ),
                c["load1"],
            ]
        )
    text = [
        f"Forward+backward, float32, {_size(SIZE)} elements, {device}, {threads} threads. "
        f"Targets: fused / limit <= {LIMIT_MAX} (allocating vs the clone-based limit, in place vs the "
        "copy_-based limit), compile / fused >= 1, eager / fused >= "
        + ", ".join(f"{v:g} ({k})" for k, v in EAGER_MIN.items())
        + f" and >= 1 for the others; in place (issue #10) fused / limit <= {INPLACE_MAX:g}, or eager / "
        f"fused in place >= {INPLACE_COMPUTE_EAGER_MIN:g} where compute bound. The in-place limit of an "
        "activation whose backward needs x counts the copy of x that backward reads (bench/README.md). "
        "Compute bound: the ratio to the limit falls from one thread to all (bench/targets.py).\n",
        _table(
            [
                "activation",
                "fused ms",
                "fused / limit (alloc)",
                "fused / limit (in place)",
                "eager / fused",
                "compile / fused",
                "fused / limit (alloc), 1 thread",
                "all met",
                "fastest calls: limit alloc / in place / eager / compile",
                "load",
            ],
            rows,
        ),
        "\nVerdicts use the medians. The fastest-call ratios say what the kernels cost when no other "
        "process got in the way; where the two disagree, the machine's load (1-minute load average when "
        "the case started; 2 cores) moved the medians.",
    ]
    misses = [(c["act"], m) for c in checks for m in c["miss"]]
    text.append("\n**Missed targets and why** (inferred from this run):\n")
    text += [f"- `{a}`: {m}" for a, m in misses] or ["- none"]
    return "\n".join(text)


def _eager_grid(ix: Index, rows, device, threads):
    """Issue #2's table: eager / fused and fused / limit for fwd and fwd+bwd, float32 and
    bfloat16, 2^16, 2^20, 2^24."""
    sizes = sorted(
        {
            r["size"]
            for r in rows
            if r["provider"] == "eager"
            and r["variant"] == "alloc"
            and r["threads"] == threads
            and r["device"] == device
        }
    )
    dtypes = [d for d in ("float32", "bfloat16", "float16", "float64") if any(r["dtype"] == d for r in rows)]
    acts = list(dict.fromkeys(r["act"] for r in rows))
    cols = [
        (d, n)
        for d in dtypes
        for n in sizes
        if any(ix.get(device, threads, d, n, a, "fwdbwd", "alloc", "eager") for a in acts)
    ]
    if not cols:
        return ""
    out = []
    for mode in ("fwd", "fwdbwd"):
        body = []
        for a in acts:
            cells = []
            for d, n in cols:
                f = ix.get(device, threads, d, n, a, mode, "alloc", "fused")
                e = ix.get(device, threads, d, n, a, mode, "alloc", "eager")
                cells.append("" if not (f and e) else f"{e['median_s'] / f['median_s']:.2f} / {f['ratio_limit']:.2f}")
            body.append([a] + cells)
        head = ["activation"] + [f"{d} {_size(n)}" for d, n in cols]
        out.append(
            f"**{'forward' if mode == 'fwd' else 'forward+backward'}** "
            "(each cell: eager / fused speedup, then fused / limit; allocating)\n\n" + _table(head, body)
        )
    return "\n\n".join(out)


def _modes(ix, rows, device, threads, dtype="float32", size=SIZE, peak_gbs=None):
    """Per mode and variant: every provider's time, the memory limit, fused GB/s and, on a GPU,
    fused GB/s as a fraction of the device's peak DRAM bandwidth (issue #13's 85% target)."""
    acts = list(dict.fromkeys(r["act"] for r in rows))
    out = []
    for mode in MODES:
        for var in VARIANTS:
            body = []
            for a in acts:
                f = ix.get(device, threads, dtype, size, a, mode, var, "fused")
                if f is None:
                    continue
                cells = [a]
                for p in ("fused", "eager", "compile"):
                    r = ix.get(device, threads, dtype, size, a, mode, var, p)
                    cells.append("" if r is None else f"{_ms(r['median_s'])} [{_ms(r['q25_s'])}, {_ms(r['q75_s'])}]")
                cells += [_ms(f["limit_s"]), f"{f['gbs']:.1f}", _x(f["ratio_limit"])]
                if peak_gbs:
                    cells.append(f"{f['gbs'] / peak_gbs:.0%}")
                body.append(cells)
            if body:
                out.append(
                    f"**{mode} / {var}**\n\n"
                    + _table(
                        [
                            "activation",
                            "fused ms [IQR]",
                            "eager ms [IQR]",
                            "compile ms [IQR]",
                            "limit ms",
                            "fused GB/s",
                            "fused / limit",
                            *(["of peak"] if peak_gbs else []),
                        ],
                        body,
                    )
                )
    return "\n\n".join(out)


def _baselines(rows, device):
    sel = {}
    for r in rows:
        if r["provider"] in ("copy", "clone") and r["device"] == device and r["dtype"] == "float32":
            sel.setdefault((r["threads"], r["size"], r["provider"]), []).append(r["median_s"])
    keys = sorted({(t, n) for t, n, _ in sel}, key=lambda k: (-k[0], k[1]))
    body = []
    for t, n in keys:
        cp = sorted(sel.get((t, n, "copy"), [None]))
        cl = sorted(sel.get((t, n, "clone"), [None]))
        c, k = cp[len(cp) // 2], cl[len(cl) // 2]
        body.append(
            [
                t,
                _size(n),
                len(cp),
                _ms(c),
                f"{8 * n / c / 1e9:.1f}" if c else "",
                _ms(k),
                f"{8 * n / k / 1e9:.1f}" if k else "",
            ]
        )
    return _table(["threads", "size", "cases", "copy_ ms", "copy_ GB/s", "clone ms", "clone GB/s"], body)


def _compile(rows, device):
    sel = [r for r in rows if r["provider"] == "compile" and r["compile_s"] is not None and r["device"] == device]
    if not sel:
        return ""
    body = [[r["act"], r["dtype"], _size(r["size"]), r["mode"], r["variant"], f"{r['compile_s']:.2f}"] for r in sel]
    total = sum(r["compile_s"] for r in sel)
    return (
        f"{len(sel)} compilations, {total:.0f} s in all (first call after `torch._dynamo.reset()`; not in "
        "the timings).\n\n<details><summary>per case</summary>\n\n"
        + _table(["activation", "dtype", "size", "mode", "variant", "compile s"], body)
        + "\n\n</details>"
    )


def _memory(rows, device, threads):
    acts = list(dict.fromkeys(r["act"] for r in rows))
    body = []
    for a in acts:
        got = {
            r["provider"]: r
            for r in rows
            if r["act"] == a
            and r["mode"] == "fwdbwd"
            and r["variant"] == "alloc"
            and r["size"] == SIZE
            and r["dtype"] == "float32"
            and r["threads"] == threads
            and r["device"] == device
            and r["saved_bytes"] is not None
        }
        if not got:
            continue
        nb = 4 * SIZE
        cells = [a]
        for p in ("fused", "eager", "compile"):
            r = got.get(p)
            cells.append("" if r is None else f"{_mib(r['saved_bytes'])} ({r['saved_bytes'] / nb:.1f})")
        if device == "cuda":
            for p in ("fused", "eager", "compile"):
                r = got.get(p)
                cells.append("" if r is None or r["peak_bytes"] is None else _mib(r["peak_bytes"]))
        body.append(cells)
    if not body:
        return ""
    head = ["activation", "fused MiB (tensors)", "eager MiB (tensors)", "compile MiB (tensors)"]
    if device == "cuda":
        head += ["fused peak MiB", "eager peak MiB", "compile peak MiB"]
    return (
        "Bytes autograd keeps for backward, fwd+bwd allocating, float32 2^24 (distinct storages; in "
        "parentheses, in units of one 2^24 float32 tensor).\n\n" + _table(head, body)
    )


def _threads(ix, rows, device):
    ts = sorted({r["threads"] for r in rows if r["device"] == device})
    if len(ts) < 2:
        return ""
    lo, hi = ts[0], ts[-1]
    acts = list(dict.fromkeys(r["act"] for r in rows))
    body = []
    for a in acts:
        cells = [a]
        for mode in ("fwd", "fwdbwd"):
            for p in ("fused", "eager"):
                r1 = ix.get(device, lo, "float32", SIZE, a, mode, "alloc", p)
                rn = ix.get(device, hi, "float32", SIZE, a, mode, "alloc", p)
                cells.append("" if not (r1 and rn) else f"{_ms(r1['median_s'])} / {_ms(rn['median_s'])}")
            f1 = ix.get(device, lo, "float32", SIZE, a, mode, "alloc", "fused")
            cells.append(_x(f1["ratio_limit"]) if f1 else "")
        if len(cells) > 1 and any(cells[1:]):
            body.append(cells)
    if not body:
        return ""
    return f"float32 {_size(SIZE)}, allocating; each cell: ms on {lo} thread / on {hi} threads.\n\n" + _table(
        [
            "activation",
            "fwd fused",
            "fwd eager",
            f"fwd fused / limit ({lo} thr)",
            "fwd+bwd fused",
            "fwd+bwd eager",
            f"fwd+bwd fused / limit ({lo} thr)",
        ],
        body,
    )


def _small_and_models(out: Path) -> str:
    """Issue #10's per-call and training-step targets, from the call_cost.json and
    model_step.json in the same folder (their own runs; empty when neither is there)."""
    from .call_cost import load_medians

    calls, models, when = [], [], []
    if (out / "call_cost.json").exists():
        calls = step_targets.check_calls(load_medians(out / "call_cost.json"))
        m = json.loads((out / "call_cost.json").read_text())
        when.append(f"`{m['command']}` ({m['machine'].get('date')}, ISA {m['machine'].get('cpu_isa')})")
    if (out / "model_step.json").exists():
        m = json.loads((out / "model_step.json").read_text())
        boundary = None
        if (out / "op_boundary.json").exists():
            boundary = step_targets.boundary_ratios(json.loads((out / "op_boundary.json").read_text())["results"])
        models = step_targets.check_models(m["results"], boundary)
        when.append(
            f"`python -m bench.model_step --repeats {m['args'].get('repeats')}` "
            f"({m['machine'].get('date')}, ISA {m['machine'].get('cpu_isa')})"
        )
    if not calls and not models:
        return ""
    return (
        "From " + " and ".join(when) + ": per-call costs at 16 - 65,536 elements and on the issue's shapes in "
        "[call_cost.md](call_cost.md), with the forward-only bound that explains each miss there (the ratio if "
        "our backward and autograd cost eager's); training steps of converted models, eager and compiled, with "
        "inductor's kernel counts, in [model_step.md](model_step.md) (what the custom-op boundary alone costs a "
        "compiled step: [op_boundary.md](op_boundary.md), where present). Targets and verdicts: "
        "bench/step_targets.py.\n\n" + step_targets.render(calls, models)
    )


def render(meta: dict, rows: list[dict], out: Path) -> Path:
    device = meta.get("device", "cpu")
    threads = max((r["threads"] for r in rows if r["device"] == device), default=1)
    one = min((r["threads"] for r in rows if r["device"] == device), default=threads)
    ix = Index(rows)
    checks = check(rows, device, threads, one if one != threads else None)
    peak = meta.get("gpu_peak_bandwidth_gbs")
    figs = (
        plots.size_plots(rows, out, device, threads, peak)
        + plots.speedup_plot(checks, out)
        + plots.memory_plot(rows, out, device, threads)
    )
    parts = [
        f"# fused_act benchmark: {meta.get('gpu') or meta.get('cpu_model')} ({device})",
        f"Generated by `{meta.get('command')}` (bench/README.md explains the columns and the method). "
        "Times are medians over all timed calls after warm-up, with the interquartile range; the providers "
        "of a case and its copy_/clone baselines take turns in every round. Limit = the memory-bandwidth "
        "limit measured in the same case: every fresh output charged one `clone`, every other byte at "
        "`copy_`'s rate (fresh 64 MB tensors cost page faults here). Ratios < 1 mean faster than the limit "
        "(possible when caches hold the data, or when the clone measured slower in that round).",
        "## Machine\n\n" + _machine(meta),
    ]
    if peak:
        parts.append(
            f"GPU peak DRAM bandwidth (from the memory clock and bus width): **{peak:.0f} GB/s**; read "
            "the GB/s columns and the roofline plot against it."
        )
    if meta.get("sections"):
        parts.append("Run sections: " + "; ".join(meta["sections"]))
    parts.append("## Targets\n\n" + _targets(checks, threads, device))
    small = _small_and_models(out)
    if small:
        parts.append("## Targets at small sizes and whole models (issue #10)\n\n" + small)
    for f in figs:
        parts.append(f"![{f}]({f})")
    grid = _eager_grid(ix, rows, device, threads)
    if grid:
        load = max([*(meta.get("load_start") or [0])[:1], *(meta.get("load_end") or [0])[:1]])
        cores = meta.get("cpu_cores") or 1
        warn = ""
        if device == "cpu" and threads > 1 and load > cores:
            warn = (
                f"\n\n_The machine was overloaded during this run (1-minute load up to {load:.1f} on {cores} "
                "cores). With all threads, every parallel region waits for a worker the scheduler parked, "
                "one time slice (~10 ms) that swamps any call shorter than that: at sizes below 2^24 these "
                "cells measure scheduling, not kernels. The one-thread table below and `python -m bench "
                "guard` (one thread, fastest calls) are the reliable view there._"
            )
        parts.append("## fused vs eager, by dtype and size\n\n" + grid + warn)
    modes = _modes(ix, rows, device, threads, size=SIZE, peak_gbs=peak)
    parts.append(f"## Every mode at float32 {_size(SIZE)}\n\n" + (modes or "_none_"))
    parts.append("## Memory-bandwidth baselines (float32)\n\n" + _baselines(rows, device))
    for title, body in (
        ("Compile time", _compile(rows, device)),
        ("Memory saved for backward", _memory(rows, device, threads)),
        ("One thread vs all", _threads(ix, rows, device)),
    ):
        if body:
            parts.append(f"## {title}\n\n{body}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / "report.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path
