"""Figures for the report (matplotlib, Agg): time vs size per provider, achieved GB/s against
the copy_/clone bandwidth (roofline-style: a memory-bound op sits on the copy line), speedups
at the target point and bytes saved for backward."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .targets import SIZE  # noqa: E402

STYLE = {
    "fused": ("C0", "o", "-"),
    "eager": ("C1", "s", "-"),
    "compile": ("C2", "^", "-"),
    "copy": ("0.3", "", "--"),
    "clone": ("0.6", "", ":"),
}


def _series(rows, act, mode, variant, provider, dtype, threads, device):
    pts = sorted(
        (r["size"], r)
        for r in rows
        if r["act"] == act
        and r["mode"] == mode
        and r["variant"] == variant
        and r["provider"] == provider
        and r["dtype"] == dtype
        and r["threads"] == threads
        and r["device"] == device
    )
    return [p for _, p in pts]


def _sweep_acts(rows, dtype, threads, device):
    sizes: dict[str, set] = {}
    for r in rows:
        if r["dtype"] == dtype and r["threads"] == threads and r["device"] == device and r["provider"] == "fused":
            sizes.setdefault(r["act"], set()).add(r["size"])
    return [a for a, s in sizes.items() if len(s) >= 4]


def size_plots(rows, out: Path, device: str, threads: int, peak_gbs: float | None = None) -> list[str]:
    """time_vs_size.png and gbs_vs_size.png, one panel per swept activation, fwd+bwd and fwd."""
    acts = _sweep_acts(rows, "float32", threads, device)
    if not acts:
        return []
    files = []
    for kind in ("time", "gbs"):
        fig, axes = plt.subplots(2, len(acts), figsize=(4 * len(acts), 7), squeeze=False, sharex=True)
        for j, act in enumerate(acts):
            for i, (mode, variant) in enumerate((("fwdbwd", "alloc"), ("fwd", "inplace"))):
                ax = axes[i][j]
                for p, (color, marker, ls) in STYLE.items():
                    s = _series(rows, act, mode, variant, p, "float32", threads, device)
                    if not s:
                        continue
                    xs = [r["size"] for r in s]
                    if kind == "time":
                        ys = [r["median_s"] * 1e3 for r in s]
                        lo = [r["q25_s"] * 1e3 for r in s]
                        hi = [r["q75_s"] * 1e3 for r in s]
                        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
                    else:
                        ys = [r["gbs"] for r in s]
                    ax.plot(
                        xs,
                        ys,
                        color=color,
                        marker=marker,
                        linestyle=ls,
                        markersize=4,
                        label=p if p not in ("copy", "clone") else f"{p}_ (limit)" if p == "copy" else p,
                    )
                if kind == "gbs" and peak_gbs:
                    ax.axhline(peak_gbs, color="r", linestyle="-.", linewidth=1, label="GPU peak")
                ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.set_title(f"{act}  {'fwd+bwd, allocating' if mode == 'fwdbwd' else 'fwd, in place'}", fontsize=9)
                ax.grid(True, which="both", alpha=0.3)
                if i == 1:
                    ax.set_xlabel("elements")
                if j == 0:
                    ax.set_ylabel("median time (ms)" if kind == "time" else "achieved GB/s")
        axes[0][0].legend(fontsize=8)
        fig.suptitle(
            f"float32, {device}, {threads} thread(s)"
            + ("; shaded: interquartile range" if kind == "time" else "; bytes = what the op must move")
        )
        fig.tight_layout()
        name = f"{kind}_vs_size.png"
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        files.append(name)
    return files


def speedup_plot(checks: list[dict], out: Path) -> list[str]:
    if not checks:
        return []
    acts = [c["act"] for c in checks]
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(acts)), 4))
    w = 0.27
    xs = range(len(acts))
    for k, (key, label, color) in enumerate(
        (("eager_speedup", "eager / fused", "C1"), ("compile_speedup", "compile / fused", "C2"))
    ):
        ax.bar([x + (k - 0.5) * w for x in xs], [c[key] or 0 for c in checks], w, label=label, color=color)
    ax.bar([x + 1.5 * w for x in xs], [1 / c["limit_alloc"] for c in checks], w, label="limit / fused", color="0.5")
    ax.axhline(1.0, color="k", linewidth=0.8)
    ax.set_xticks(list(xs), acts, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("speedup of fused (x)")
    ax.set_title(f"fwd+bwd, float32, 2^{SIZE.bit_length() - 1}, allocating (> 1: fused is faster)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "speedup.png", dpi=90)
    plt.close(fig)
    return ["speedup.png"]


def memory_plot(rows, out: Path, device: str, threads: int) -> list[str]:
    sel = [
        r
        for r in rows
        if r["mode"] == "fwdbwd"
        and r["variant"] == "alloc"
        and r["size"] == SIZE
        and r["dtype"] == "float32"
        and r["threads"] == threads
        and r["device"] == device
        and r["saved_bytes"] is not None
    ]
    if not sel:
        return []
    acts = list(dict.fromkeys(r["act"] for r in sel))
    fig, ax = plt.subplots(figsize=(max(8, 0.5 * len(acts)), 4))
    w = 0.27
    for k, p in enumerate(("fused", "eager", "compile")):
        vals = {r["act"]: r["saved_bytes"] / 2**20 for r in sel if r["provider"] == p}
        ax.bar(
            [i + (k - 1) * w for i in range(len(acts))], [vals.get(a, 0) for a in acts], w, label=p, color=STYLE[p][0]
        )
    ax.set_xticks(range(len(acts)), acts, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("MiB saved for backward")
    ax.set_title(f"bytes autograd keeps between forward and backward (float32, 2^{SIZE.bit_length() - 1})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "memory.png", dpi=90)
    plt.close(fig)
    return ["memory.png"]
