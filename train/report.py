"""``python -m train report RUN_DIR...``: a Markdown report with our numbers beside the published
ones, the setup differences, and the plots. Reads only what the runs wrote (summary.json and the
CSV/JSON metrics); every number in it was measured by the loop."""

from __future__ import annotations

import csv
import datetime
import json
from collections import defaultdict
from pathlib import Path

from .experiments import EXPERIMENTS
from .published import PUBLISHED, SOURCES, same_epoch


def _csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path) as f:
        return [{k: (float(v) if v not in ("", None) else None) for k, v in r.items()} for r in csv.DictReader(f)]


def load_run(d: Path) -> dict:
    d = Path(d)
    ls = d / "layer_stats.json"
    return {
        "dir": d,
        "summary": json.loads((d / "summary.json").read_text()),
        "evals": _csv(d / "evals.csv"),
        "epochs": _csv(d / "epochs.csv"),
        "layer_stats": json.loads(ls.read_text()) if ls.is_file() else [],
    }


def find_runs(paths) -> list[Path]:
    out = []
    for p in map(Path, paths):
        if (p / "summary.json").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(q.parent for q in p.rglob("summary.json"))
    return list(dict.fromkeys(out))


def _f(v, nd=4):
    return "-" if v is None else f"{v:.{nd}f}"


def _pub_key(s):
    return (s["model"], s["act"])


def _deviations(s: dict) -> list[str]:
    exp = EXPERIMENTS.get(s["experiment"])
    dev = []
    if s["epochs_done"] != s["epochs_config"]:
        dev.append(f"{s['epochs_done']} of the setup's {s['epochs_config']} epochs")
    if s.get("subset"):
        dev.append(f"training subset of {s['n_train']} images")
    if s.get("test_subset"):
        dev.append(f"test subset of {s['n_test']} images")
    if exp and (s["batch_size"] != exp.batch_size or s["lr"] != exp.lr):
        dev.append(f"batch {s['batch_size']}, lr {s['lr']} (setup: {exp.batch_size}, {exp.lr})")
    m = s["machine"]
    dev.append(
        f"{m['device']} ({m.get('cpu', '')}, {m['threads']} thread(s)"
        + (f", {m['gpu']}" if m.get("gpu") else "")
        + ")"
        + (f", AMP {s['amp']}" if s.get("amp") else "")
        + (f", {s['world_size']} processes" if s["world_size"] > 1 else "")
    )
    if "ImageFolder" in s["data_source"] or "jpeg" in s["data_source"].lower():
        dev.append("CIFAR-10 JPEG re-encode (about quality 75), not the official binaries")
    if not s["complete"]:
        dev.append("INCOMPLETE (interrupted)")
    return dev


def _published_cell(p, split: str, s: dict, nd: int = 3) -> str:
    v, note = same_epoch(p, split, s["epochs_done"], s["epochs_config"])
    return _f(v, nd) if v is not None else (f"- ({note})" if note else "-")


def _main_table(runs, pub) -> list[str]:
    """Ours beside the published accuracy after the same number of epochs (see published.same_epoch)."""
    has_train_pub = any((pub.get(_pub_key(r["summary"])) or {}).get("final_train_acc") is not None for r in runs)
    head = "| model | activation | impl | epochs | test acc | published test acc, same epoch |"
    sep = "|---|---|---|---|---|---|"
    if has_train_pub:
        head += " train acc | published train acc, same epoch |"
        sep += "---|---|"
    head += " s/epoch (train) | wall s |"
    sep += "---|---|"
    lines = [head, sep]
    for r in runs:
        s = r["summary"]
        p = pub.get(_pub_key(s)) or {}
        pt = _published_cell(p, "test", s)
        row = f"| {s['model']} | {s['act']} | {s['impl']} | {s['epochs_done']} | {_f(s['final_test_acc'])} | {pt} |"
        if has_train_pub:
            row += f" {_f(s['final_train_acc'])} | {_published_cell(p, 'train', s)} |"
        spe = s["sec_per_epoch"]
        row += f" {_f(sum(spe) / len(spe), 2) if spe else '-'} | {s['wall_time_s']:.0f} |"
        lines.append(row)
    return lines


def _thresholds_table(runs, pub) -> list[str]:
    ths = sorted({t for r in runs for t in r["summary"]["steps_to"]}, key=float)
    if not ths:
        return []
    lines = [
        "Mini-batch steps until test accuracy first reaches each threshold. Ours is the first evaluated step "
        "at or above it; the crossing lies in the interval in brackets (between the previous evaluation and that one).",
        "",
        "| model | activation | impl | "
        + " | ".join(f"{t} ours | {t} published" for t in ths)
        + " | final test acc | published mean acc | s/epoch | published s/epoch |",
        "|---|---|---|" + "---|---|" * len(ths) + "---|---|---|---|",
    ]
    for r in runs:
        s = r["summary"]
        p = pub.get(_pub_key(s)) or {}
        cells = []
        for t in ths:
            o = s["steps_to"].get(t)
            cells.append(f"{o['step']} (in ({o['prev_eval_step']}, {o['step']}])" if o else "not reached")
            cells.append(str((p.get("steps_to") or {}).get(float(t), "-")))
        spe = s["sec_per_epoch"]
        lines.append(
            f"| {s['model']} | {s['act']} | {s['impl']} | "
            + " | ".join(cells)
            + f" | {_f(s['final_test_acc'])} | {_f(p.get('mean_test_acc'), 3)} | "
            f"{_f(sum(spe) / len(spe), 2) if spe else '-'} | {p.get('sec_per_epoch', '-')} |"
        )
    return lines


def _per_epoch_table(runs, pub) -> list[str]:
    """Ours and the published accuracy after each epoch we ran (E1, E3)."""
    lines = []
    for r in runs:
        s = r["summary"]
        p = pub.get(_pub_key(s)) or {}
        if s["impl"] != "fused" or not (p.get("test_acc_per_epoch") or p.get("train_acc_per_epoch")):
            continue
        n = len(s["test_acc_per_epoch"])
        lines.append(
            f"- {s['model']} {s['act']}, after epochs 1..{n}: test ours "
            + " ".join(f"{v:.3f}" for v in s["test_acc_per_epoch"])
            + " | published "
            + " ".join(f"{v:.3f}" for v in (p.get("test_acc_per_epoch") or [])[:n])
            + (
                "; train ours "
                + " ".join(f"{v:.3f}" for v in s["train_acc_per_epoch"])
                + " | published "
                + " ".join(f"{v:.3f}" for v in p["train_acc_per_epoch"][:n])
                if p.get("train_acc_per_epoch")
                else ""
            )
        )
    return lines


def _impl_table(runs) -> list[str]:
    pairs = defaultdict(dict)
    for r in runs:
        s = r["summary"]
        pairs[_pub_key(s)][s["impl"]] = r
    rows = []
    for (m, a), d in pairs.items():
        if "fused" in d and "eager" in d:
            f, e = d["fused"], d["eager"]
            fa, ea = f["summary"]["test_acc_per_epoch"], e["summary"]["test_acc_per_epoch"]
            diff = max((abs(x - y) for x, y in zip(fa, ea)), default=None)
            fs, es = sum(f["summary"]["sec_per_epoch"]), sum(e["summary"]["sec_per_epoch"])
            rows.append(
                f"| {m} | {a} | {_f(f['summary']['final_test_acc'])} | {_f(e['summary']['final_test_acc'])} | "
                f"{_f(diff)} | {fs / max(len(fa), 1):.2f} | {es / max(len(ea), 1):.2f} | {es / fs:.2f} |"
            )
    if not rows:
        return []
    return [
        "| model | activation | test acc fused | test acc eager | max per-epoch |diff| | s/epoch fused | "
        "s/epoch eager | eager/fused time |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Training seconds per epoch exclude evaluation. The machine is shared with other jobs, so single "
        "timings are noisy; the accuracy columns are the reproducibility check (same seed, same data order).",
    ]


def _layer_summary(runs) -> list[str]:
    rows = []
    for r in runs:
        if r["summary"]["impl"] != "fused" or not r["layer_stats"]:
            continue
        s = r["summary"]
        first, last = r["layer_stats"][0], r["layer_stats"][-1]

        def agg(snap, key):
            v = [a[key] for a in snap["activations"] if a.get(key) is not None]
            return sum(v) / len(v) if v else None

        gv0 = [a.get("act_grad_var") for a in first["activations"]]
        ratio = (gv0[0] / gv0[-1]) if gv0 and gv0[0] and gv0[-1] else None
        rows.append(
            f"| {s['model']} | {s['act']} | {_f(agg(first, 'dead_frac'), 3)} / {_f(agg(last, 'dead_frac'), 3)} | "
            f"{_f(agg(first, 'sat_frac'), 3)} / {_f(agg(last, 'sat_frac'), 3)} | "
            f"{'-' if ratio is None else f'{ratio:.3g}'} |"
        )
    if not rows:
        return []
    return [
        "Per-layer statistics on a fixed batch of training images (256 unless --stats-batch says otherwise) "
        "(mean over activation layers; init / end). "
        "Dead: units whose output is zero on every image of the batch. Saturated: outputs within 1% of the "
        "output range from a bound (bounded activations only). Last column: variance of the gradient reaching "
        "the first activation layer over that reaching the last, at init (>1: gradients grow towards the "
        "input; <<1: they vanish).",
        "",
        "| model | activation | dead fraction | saturated fraction | grad var first/last layer (init) |",
        "|---|---|---|---|---|",
        *rows,
    ]


def write_report(paths, out: Path, title: str | None = None) -> Path:
    from .plots import plot_activations, plot_curves, plot_layer_stats

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = [load_run(d) for d in find_runs(paths)]
    by_exp = defaultdict(list)
    for r in runs:
        by_exp[r["summary"]["experiment"]].append(r)
    md = [
        f"# {title or 'Activation-function comparisons: ours beside the published numbers'}",
        "",
        f"Written by `python -m train report` on {datetime.date.today()} from {len(runs)} run(s). "
        "Every number labelled ours was measured by `train/`; published numbers are the sources' "
        "(REPRODUCE.md).",
        "",
    ]
    order = list(EXPERIMENTS)
    for name, rs in sorted(by_exp.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        exp = EXPERIMENTS.get(name)
        known = list(exp.runs) if exp else []
        rs.sort(
            key=lambda r: (
                known.index(_pub_key(r["summary"])) if _pub_key(r["summary"]) in known else len(known),
                r["summary"]["model"],
                r["summary"]["act"],
                r["summary"]["impl"] != "fused",
            )
        )
        pub = PUBLISHED.get(name, {})
        s0 = rs[0]["summary"]
        md += [
            f"## {name.upper()}: {s0['title']} (config v{s0['experiment_version']})",
            "",
            f"Source: {SOURCES.get(name, '?')}. Data: {s0['data_source']}.",
            "",
        ]
        md += _main_table(rs, pub) + [""]
        md += _thresholds_table(rs, pub) + [""]
        pe = _per_epoch_table(rs, pub)
        if pe:
            md += ["Accuracy per epoch:", "", *pe, ""]
        it = _impl_table(rs)
        if it:
            md += ["### fused vs eager", "", *it, ""]
        md += ["### Setup and differences from the source", ""]
        if exp:
            md += [
                f"- setup: {exp.optimizer} lr {exp.lr} {exp.opt_args or ''}, batch {exp.batch_size}, "
                f"{exp.epochs} epochs, init {exp.init}"
                + (f", lr x0.1 at epochs {list(exp.lr_milestones)}" if exp.lr_milestones else "")
            ]
            md += [f"- our choice where the source is silent: {c}" for c in exp.choices]
        devs = defaultdict(list)
        for r in rs:
            devs["; ".join(_deviations(r["summary"]))].append(
                f"{r['summary']['model']}/{r['summary']['act']}/{r['summary']['impl']}"
            )
        md += [f"- this run{'s' if len(v) > 1 else ''} ({', '.join(v)}): {k}" for k, v in devs.items()]
        md += ["- command(s):", *sorted({f"  - `{r['summary']['command']}`" for r in rs}), ""]
        curves = plot_curves(
            rs,
            pub,
            out / f"{name}_curves.png",
            by_step=bool(exp and exp.thresholds),
            thresholds=exp.thresholds if exp else (),
        )
        acts = list(dict.fromkeys(r["summary"]["act"] for r in rs))
        params = {r["summary"]["act"]: r["summary"].get("act_params") or {} for r in rs}
        ap = plot_activations(acts, out / f"{name}_activations.png", params=params)
        ls = plot_layer_stats(rs, out / f"{name}_layer_stats.png")
        md += [
            "### Plots",
            "",
            f"![learning curves]({curves.name})",
            "",
            f"![activations and derivatives]({ap.name})",
            "",
            *(_layer_summary(rs)),
            "",
            f"![per-layer statistics]({ls.name})",
            "",
        ]
    path = out / "report.md"
    path.write_text("\n".join(md) + "\n")
    return path


def print_table(summaries) -> None:
    rows = [("model", "act", "impl", "epochs", "test acc", "published (same epoch)", "s/epoch")]
    for _, s in summaries:
        p = PUBLISHED.get(s["experiment"], {}).get((s["model"], s["act"])) or {}
        spe = s["sec_per_epoch"]
        rows.append(
            (
                s["model"],
                s["act"],
                s["impl"],
                str(s["epochs_done"]),
                _f(s["final_test_acc"]),
                _published_cell(p, "test", s),
                _f(sum(spe) / len(spe), 2) if spe else "-",
            )
        )
        for t, o in s["steps_to"].items():
            pt = (p.get("steps_to") or {}).get(float(t), "-")
            rows.append(("", f"  steps to {t}", "", "", str(o["step"]) if o else "not reached", str(pt), ""))
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w[i]) for i, c in enumerate(r)))
