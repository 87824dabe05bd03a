"""Command line: ``python -m train <experiment> [options]``, ``report``, ``list``, ``plot-activations``,
``fake-data``. ``python -m train <experiment> -h`` lists the options."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from . import experiments
from .data import DataNotFound

DEFAULT_OUT = Path("runs")


def _run_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Train an experiment's models with each of its activations "
        "(or --act/--model), then write a report beside the published numbers.",
    )
    p.add_argument("--act", nargs="+", help="activations (any registered name) instead of the experiment's")
    p.add_argument(
        "--model", nargs="+", help="models (mlp1 mlp6 mlp_deep allcnn inception) instead of the experiment's"
    )
    p.add_argument("--epochs", type=int, help="instead of the experiment's")
    p.add_argument("--subset", type=int, help="train on the first N images of a fixed shuffle of the training set")
    p.add_argument("--test-subset", type=int, help="evaluate on N test images (a fixed shuffle)")
    p.add_argument("--batch-size", type=int, help="global batch (split over torchrun processes)")
    p.add_argument("--lr", type=float)
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument(
        "--impl",
        nargs="+",
        default=["fused"],
        choices=["fused", "eager"],
        help="fused_act kernels, torch's own activations, or both (runs each)",
    )
    p.add_argument("--data-dir", help="default: $FUSED_ACT_DATA, else ../shared/data next to the repo")
    p.add_argument("--download", action="store_true", help="let torchvision download missing data")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch CPU threads (1 is fastest on a busy shared machine)")
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="runs go to OUT/<experiment>/<model>-<act>-<impl>-s<seed>"
    )
    p.add_argument("--resume", action="store_true", help="continue each run from its checkpoint.pt")
    p.add_argument("--stop-after", type=int, help="stop (with a checkpoint) after N steps, as if interrupted")
    p.add_argument(
        "--amp",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="autocast mixed precision: bfloat16 (float16 + gradient scaling on CUDA GPUs without bfloat16); "
        "default on for CUDA, off for CPU, where float32 is the faithful setting and bfloat16 is ~2x faster "
        "on CPUs with avx512_bf16/AMX",
    )
    p.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="NHWC activations and weights (default on for the conv models allcnn and inception)",
    )
    p.add_argument("--stats-every", type=int, help="per-layer statistics every N steps (always at init and epoch ends)")
    p.add_argument("--stats-batch", type=int, default=256, help="training images in the layer-statistics batch")
    p.add_argument("--log-every", type=int, default=20)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-report", action="store_true")
    return p


def run_experiment(name: str, argv: list[str]) -> int:
    import torch

    from .loop import RunConfig, run
    from .report import print_table, write_report

    exp = experiments.get(name)
    a = _run_parser(f"python -m train {name}").parse_args(argv)
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but torch sees no CUDA device", file=sys.stderr)
        return 2
    if a.threads:
        torch.set_num_threads(a.threads)
    models = a.model or list(dict.fromkeys(m for m, _ in exp.runs))
    pairs = [
        (m, act)
        for m in models
        for act in (a.act or [x for mm, x in exp.runs if mm == m] or list(dict.fromkeys(x for _, x in exp.runs)))
    ]
    command = "python -m train " + " ".join(shlex.quote(x) for x in [name, *argv])
    exp_dir = a.out / name
    summaries = []
    for model, act in pairs:
        for impl in a.impl:
            cfg = RunConfig(
                experiment=exp,
                model=model,
                act=act,
                impl=impl,
                device=a.device,
                seed=a.seed,
                epochs=a.epochs,
                subset=a.subset,
                test_subset=a.test_subset,
                data_dir=a.data_dir,
                download=a.download,
                resume=a.resume,
                stop_after=a.stop_after,
                amp=a.amp,
                channels_last=a.channels_last,
                progress=not a.no_progress,
                log_every=a.log_every,
                stats_every=a.stats_every,
                stats_batch=a.stats_batch,
                batch_size=a.batch_size,
                lr=a.lr,
                command=command,
                out_dir=exp_dir / f"{model}-{act}-{impl}-s{a.seed}",
            )
            try:
                summaries.append((cfg.out_dir, run(cfg)))
            except DataNotFound as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
    import os

    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    if int(os.environ.get("RANK", "0")) == 0:
        print_table(summaries)
        if not a.no_report:
            path = write_report([d for d, _ in summaries], exp_dir)
            print(f"report: {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "usage: python -m train {"
        + ",".join(experiments.EXPERIMENTS)
        + "} [options]  |  report RUN_DIR... [--out DIR]  |  list  |  plot-activations NAME... --out DIR"
        "  |  fake-data DIR"
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd in experiments.EXPERIMENTS:
        return run_experiment(cmd, rest)
    if cmd == "report":
        from .report import write_report

        p = argparse.ArgumentParser(prog="python -m train report")
        p.add_argument("runs", nargs="+", type=Path, help="run dirs, or dirs holding run dirs")
        p.add_argument("--out", type=Path, help="default: the first argument")
        p.add_argument("--title")
        a = p.parse_args(rest)
        print(f"report: {write_report(a.runs, a.out or a.runs[0], title=a.title)}")
        return 0
    if cmd == "list":
        import fused_act

        from .models import MODELS

        for e in experiments.EXPERIMENTS.values():
            print(f"{e.name} (v{e.version}): {e.title}\n    runs: " + ", ".join(f"{m}/{x}" for m, x in e.runs))
        print("models: " + ", ".join(MODELS))
        print("activations: " + ", ".join(fused_act.ACTIVATIONS))
        return 0
    if cmd == "plot-activations":
        from .plots import plot_activations

        p = argparse.ArgumentParser(prog="python -m train plot-activations")
        p.add_argument("names", nargs="*", help="default: every registered activation")
        p.add_argument("--out", type=Path, default=Path("activations.png"))
        a = p.parse_args(rest)
        import fused_act

        plot_activations(a.names or list(fused_act.ACTIVATIONS), a.out)
        print(a.out)
        return 0
    if cmd == "fake-data":
        from .fakedata import write_all

        p = argparse.ArgumentParser(
            prog="python -m train fake-data", description="small random data sets in the real formats (for smoke runs)"
        )
        p.add_argument("dir", type=Path)
        p.add_argument("--n-train", type=int, default=256)
        p.add_argument("--n-test", type=int, default=128)
        a = p.parse_args(rest)
        write_all(a.dir, a.n_train, a.n_test)
        print(a.dir)
        return 0
    print(f"unknown command {cmd!r}\n{usage}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
