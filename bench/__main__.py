"""``python -m bench``: run a plan (or a subset chosen by flags), write CSV/JSON, render the report.

python -m bench                         # the committed report for this machine (plan 'full')
python -m bench --quick                 # a few activations, 2^20: about a minute
python -m bench --acts elu mish --dtypes float32 float16 --sizes 16 20 24 --modes fwdbwd
python -m bench report bench/results    # re-render a report from its results.json
python -m bench guard                   # the regression guard (exit status 1 on a regression)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import torch

from . import report, runner
from .cases import DTYPES, MODES, PROVIDERS, VARIANTS, Section, all_threads, expand, plan

DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def _run_args(p: argparse.ArgumentParser):
    p.add_argument("--quick", action="store_true", help="plan 'quick' instead of 'full'")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"results folder (default {DEFAULT_OUT}, or "
        "bench/results/cuda for CUDA, bench/results/custom for a flag-chosen subset)",
    )
    p.add_argument("--rounds", type=int, default=7, help="interleaved rounds per case")
    p.add_argument(
        "--warmup", type=int, default=1, help="untimed calls per provider before the rounds (after the one check call)"
    )
    g = p.add_argument_group("subset (any of these replaces the plan by one section built from them)")
    g.add_argument("--acts", nargs="+")
    g.add_argument("--dtypes", nargs="+", choices=list(DTYPES))
    g.add_argument("--sizes", nargs="+", type=int, help="log2 of the element count, 12..26")
    g.add_argument("--modes", nargs="+", choices=MODES)
    g.add_argument("--variants", nargs="+", choices=VARIANTS)
    g.add_argument("--providers", nargs="+", choices=PROVIDERS)
    g.add_argument("--threads", nargs="+", type=int, help="CPU threads (default: all cores)")


def _sections(a) -> tuple[list[Section], str]:
    custom = any(getattr(a, k) for k in ("acts", "dtypes", "sizes", "modes", "variants", "providers", "threads"))
    if not custom:
        return plan("quick" if a.quick else "full", a.device), ("quick" if a.quick else "")
    s = Section("custom")
    if a.acts:
        import fused_act

        bad = set(a.acts) - set(fused_act.ACTIVATIONS)
        if bad:
            sys.exit(f"unknown activation(s) {sorted(bad)}; known: {', '.join(fused_act.ACTIVATIONS)}")
        s.acts = a.acts
    for k in ("dtypes", "modes", "variants", "providers", "threads"):
        if getattr(a, k):
            setattr(s, k, getattr(a, k))
    if a.sizes:
        s.sizes = [1 << k for k in a.sizes]
    if a.device == "cuda":
        s.threads = [all_threads()]
    return [s], "custom"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
        meta, rows = runner.load(out)
        print(report.render(meta, rows, out))
        return 0
    if argv[:1] == ["guard"]:
        from . import guard

        return guard.main(argv[1:])
    p = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _run_args(p)
    a = p.parse_args(argv)
    a.device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    sections, kind = _sections(a)
    out = a.out or (DEFAULT_OUT / "cuda" if a.device == "cuda" else DEFAULT_OUT / kind if kind else DEFAULT_OUT)
    cases = expand(sections, a.device)
    command = "python -m bench" + ("" if not argv else " " + shlex.join(argv))
    print(f"{len(cases)} cases -> {out}", file=sys.stderr)
    meta, rows = runner.run(cases, out, command, a.rounds, a.warmup, [s.title for s in sections])
    path = report.render(meta, rows, out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
