"""Figures for the reports (matplotlib, Agg): learning curves, activations with their
derivatives, per-layer statistics."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

import fused_act  # noqa: E402


def _label(r) -> str:
    s = r["summary"]
    return f"{s['model']} {s['act']}" + (f" ({s['impl']})" if s["impl"] != "fused" else "")


def _style(r) -> dict:
    return {"linestyle": ":" if r["summary"]["impl"] == "eager" else "-"}


def plot_curves(runs: list[dict], published: dict, out: Path, by_step: bool = False, thresholds=()) -> Path:
    """Test accuracy (and the published per-epoch curve, dashed) and losses per run."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = {}
    for r in runs:
        s = r["summary"]
        key = (s["model"], s["act"])
        c = colors.setdefault(key, f"C{len(colors) % 10}")
        ev = r["evals"]
        x = [e["step"] if by_step else e["epoch"] for e in ev]
        ax1.plot(x, [e["test_acc"] for e in ev], color=c, label=_label(r), **_style(r))
        ep = r["epochs"]
        if by_step:
            ax2.plot(x, [e["test_loss"] for e in ev], color=c, label=f"{_label(r)} test", **_style(r))
            ax2.plot(
                [e["step"] for e in ep],
                [e["train_loss"] for e in ep],
                color=c,
                marker="o",
                ms=3,
                label=f"{_label(r)} train (epoch mean)",
                **_style(r),
            )
        else:
            ax2.plot(
                [e["epoch"] for e in ep],
                [e["train_loss"] for e in ep],
                color=c,
                label=f"{_label(r)} train",
                **_style(r),
            )
            ax2.plot(
                [e["epoch"] for e in ep],
                [e["test_loss"] for e in ep],
                color=c,
                marker="o",
                ms=3,
                label=f"{_label(r)} test",
                **_style(r),
            )
        pub = published.get(key) or {}
        if not by_step and pub.get("test_acc_per_epoch") and s["impl"] == "fused":
            # the sources count epochs from 1 (Keras) or 0 (E3's log); both are 'after epoch k'
            pe = pub["test_acc_per_epoch"]
            ax1.plot(
                range(1, len(pe) + 1),
                pe,
                color=c,
                linestyle="--",
                marker="x",
                ms=4,
                alpha=0.6,
                label=f"{s['model']} {s['act']} published",
            )
    for t in thresholds:
        ax1.axhline(t, color="grey", lw=0.6, ls="--")
    if by_step:
        ax1.set_xscale("log")
    ax1.set_xlabel("step (mini-batches)" if by_step else "epoch")
    ax1.set_ylabel("test accuracy")
    ax1.set_title("test accuracy")
    ax1.legend(fontsize=7)
    ax1.grid(alpha=0.3)
    ax2.set_xlabel("step (mini-batches)" if by_step else "epoch")
    if by_step:
        ax2.set_xscale("log")
    ax2.set_ylabel("cross-entropy")
    ax2.set_yscale("log")
    ax2.set_title("loss (train: running mean over the epoch)")
    ax2.legend(fontsize=6, ncol=2)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_activations(
    names: list[str], out: Path, lo: float = -5.0, hi: float = 5.0, params: dict | None = None
) -> Path:
    """Each activation and its derivative, both from fused_act's own forward and backward kernels."""
    params = params or {}
    x = torch.linspace(lo, hi, 1001, dtype=torch.float64, requires_grad=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for i, n in enumerate(names):
        y = fused_act.activation(x, n, **params.get(n, {}))
        (g,) = torch.autograd.grad(y.sum(), x)
        ax1.plot(x.detach(), y.detach(), color=f"C{i % 10}", label=n)
        ax2.plot(x.detach(), g, color=f"C{i % 10}", label=n)
    ax1.set_title("activation f(x)")
    ax2.set_title("derivative f'(x) (fused_act backward)")
    for ax in (ax1, ax2):
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_xlabel("x")
    ax1.set_ylim(-2.5, 3)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_layer_stats(runs: list[dict], out: Path) -> Path:
    """Per activation layer: variance of the gradient reaching it at init and after the last epoch,
    and the fraction of saturated (bounded activations) or dead (zero on the whole batch) units."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for i, r in enumerate(x for x in runs if x["summary"]["impl"] == "fused"):
        ls = r["layer_stats"]
        if not ls:
            continue
        c = f"C{i % 10}"
        first, last = ls[0], ls[-1]
        for ax, snap, tag in ((axes[0], first, "init"), (axes[1], last, f"after step {last['step']}")):
            v = [a.get("act_grad_var") for a in snap["activations"]]
            ax.plot(range(1, len(v) + 1), v, marker="o", ms=3, color=c, label=_label(r))
            ax.set_title(f"var(dL/d activation output), {tag.split(' after')[0] if tag == 'init' else 'end'}")
        sat = [a.get("sat_frac", a.get("dead_frac", 0.0)) for a in last["activations"]]
        kind = "saturated" if "sat_frac" in last["activations"][0] else "dead"
        axes[2].plot(range(1, len(sat) + 1), sat, marker="o", ms=3, color=c, label=f"{_label(r)} ({kind})")
    for ax in axes[:2]:
        ax.set_yscale("log")
        ax.set_xlabel("activation layer (input side = 1)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[2].set_title("saturated / dead fraction per layer, end")
    axes[2].set_xlabel("activation layer")
    axes[2].grid(alpha=0.3)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
