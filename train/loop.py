"""One training run: a model, an activation, an implementation, a seed.

Writes into its run dir: steps.csv (loss/accuracy every ``log_every`` steps), evals.csv (test
accuracy on the eval schedule), epochs.csv, layer_stats.json, summary.json and checkpoint.pt
(every epoch; ``resume=True`` continues from it to the same result as an uninterrupted run).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

import fused_act

from . import data as data_mod
from . import distributed
from .experiments import Experiment
from .metrics import LayerStats, should_eval, steps_to_threshold
from .models import build_model
from .transforms import Preprocess, batch_generator


@dataclass
class RunConfig:
    experiment: Experiment
    model: str
    act: str
    out_dir: Path
    impl: str = "fused"
    device: str = "cpu"
    seed: int = 0
    epochs: int | None = None
    subset: int | None = None
    test_subset: int | None = None
    data_dir: str | None = None
    download: bool = False
    resume: bool = False
    stop_after: int | None = None  # save a checkpoint and exit after this many steps (an interruption)
    channels_last: bool | None = None  # default: on for the conv models
    amp: bool | None = None  # autocast; default on for CUDA, off for CPU (float32 is the faithful setting)
    progress: bool = True
    log_every: int = 20
    stats_every: int | None = None  # steps; layer statistics are also taken at init and every epoch end
    stats_batch: int = 256
    eval_batch: int = 1000
    batch_size: int | None = None
    lr: float | None = None
    command: str = ""
    extra: dict = field(default_factory=dict)


CONV_MODELS = ("allcnn", "inception")


def amp_dtype_for(device: torch.device) -> torch.dtype:
    """bfloat16 where it runs natively (every CPU autocast supports, CUDA sm_80+), else float16 with a
    gradient scaler. On a CPU without avx512_bf16/AMX bfloat16 is emulated and slower than float32."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def make_optimizer(exp: Experiment, params, lr: float):
    if exp.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **exp.opt_args)
    if exp.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, **exp.opt_args)
    if exp.optimizer == "amsgrad":
        return torch.optim.Adam(params, lr=lr, amsgrad=True, **exp.opt_args)
    raise ValueError(f"unknown optimizer {exp.optimizer!r}")


def epoch_order(n: int, seed: int, epoch: int, d: distributed.Dist) -> torch.Tensor:
    """This process's sample order for an epoch: a permutation fixed by (seed, epoch), dealt out
    like DistributedSampler (rank r takes r, r+world, ...), so the union of the processes' k-th
    batches is the single-process run's k-th batch."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch))
    per_rank = n // d.world
    return perm[d.rank :: d.world][:per_rank] if d.world > 1 else perm


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(dict.fromkeys(k for r in rows for k in r))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # noqa: BLE001  (tensorboard is optional)
        return None
    return SummaryWriter(str(run_dir / "tb"))


def machine_info(device: str) -> dict:
    info = {
        "device": device,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "fused_act": fused_act.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        info["cpu_isa"] = fused_act.info()["cpu_isa"]
    except Exception:  # noqa: BLE001
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


@torch.no_grad()
def evaluate(model, x_u8, y, pre: Preprocess, device, amp_ctx, batch: int, d: distributed.Dist, memory_format):
    """Test loss and accuracy; processes split the test set and sum their counts."""
    model.eval()
    idx = torch.arange(len(y))[d.rank :: d.world]
    loss_sum, correct = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.int64)
    for i in range(0, len(idx), batch):
        j = idx[i : i + batch]
        xb = pre.test(x_u8[j]).to(device, non_blocking=True, memory_format=memory_format)
        yb = y[j].to(device, non_blocking=True)
        with amp_ctx():
            out = model(xb)
        loss_sum += F.cross_entropy(out.float(), yb, reduction="sum").double().cpu()
        correct += (out.argmax(1) == yb).sum().cpu()
    model.train()
    s, c, n = distributed.all_sum([float(loss_sum), float(correct), float(len(idx))], d)
    return s / n, c / n


def run(cfg: RunConfig) -> dict:
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return _run(cfg)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


def _run(cfg: RunConfig) -> dict:
    exp = cfg.experiment
    d = distributed.init(cfg.device)
    device = torch.device(cfg.device if not cfg.device.startswith("cuda") or d.world == 1 else f"cuda:{d.local_rank}")
    if device.type == "cpu":
        # the resume-equals-uninterrupted guarantee needs deterministic kernels
        torch.use_deterministic_algorithms(True, warn_only=True)
    epochs = cfg.epochs or exp.epochs
    batch_size = cfg.batch_size or exp.batch_size
    lr = cfg.lr or exp.lr
    run_dir = Path(cfg.out_dir)
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)

    data = data_mod.subset(data_mod.load(exp.dataset, cfg.data_dir, cfg.download), cfg.subset, cfg.test_subset)
    pre = Preprocess(exp.preprocess, data)
    per_step = batch_size // pre.samples_per_step_divisor  # images drawn from the set per step
    if per_step % d.world:
        raise SystemExit(f"batch {batch_size} does not split over {d.world} processes")
    local_bs = per_step // d.world

    torch.manual_seed(cfg.seed)
    act_params = exp.act_params.get(cfg.act, {})
    # model_args (e.g. the deep MLP's depth) belong to the experiment's own model, not to --model overrides
    model_args = exp.model_args if cfg.model == exp.runs[0][0] else {}
    model = build_model(
        cfg.model, pre.input_shape(data.shape), len(data.classes), cfg.act, cfg.impl, act_params, exp.init, **model_args
    )
    # channels-last: oneDNN's and cuDNN's convolutions run NHWC natively, and fused_act's kernels keep
    # any dense layout, so no step converts a tensor (All-CNN-C step: 930 -> 780 ms here, train/README.md)
    channels_last = cfg.channels_last if cfg.channels_last is not None else cfg.model in CONV_MODELS
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format)
    opt = make_optimizer(exp, model.parameters(), lr)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [m for m in exp.lr_milestones], 0.1)
    use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
    amp_dtype = amp_dtype_for(device)
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16)

    def amp_ctx():
        return torch.autocast(device.type, dtype=amp_dtype) if use_amp else contextlib.nullcontext()

    net = model
    if d.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    stats = LayerStats(model)
    stats_x = pre.test(data.train_x[: cfg.stats_batch]).to(device, memory_format=memory_format)
    stats_y = data.train_y[: cfg.stats_batch].to(device)

    n_local = len(epoch_order(len(data.train_y), cfg.seed, 0, d))
    steps_per_epoch = math.ceil(n_local / local_bs)
    st = {
        "epoch": 0,
        "batch": 0,
        "step": 0,
        "train_time": 0.0,
        "eval_time": 0.0,
        "steps": [],
        "evals": [],
        "epochs": [],
        "layer_stats": [],
        "ep_loss": 0.0,
        "ep_correct": 0.0,
        "ep_n": 0.0,
    }
    ckpt_path = run_dir / "checkpoint.pt"
    if cfg.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"])
        st = ck["state"]
        if d.main:
            print(f"resumed {run_dir} at epoch {st['epoch']} step {st['step']}", file=sys.stderr)

    def save_checkpoint():
        if d.main:
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": torch.get_rng_state(),
                    "state": st,
                },
                tmp,
            )
            os.replace(tmp, ckpt_path)

    tb = _tensorboard(run_dir) if d.main else None

    def take_stats(tag):
        if d.main:
            st["layer_stats"].append(
                {
                    "step": st["step"],
                    "epoch": st["epoch"],
                    "tag": tag,
                    **stats.measure(stats_x, stats_y, F.cross_entropy),
                }
            )

    def do_eval():
        t = time.perf_counter()
        loss, acc = evaluate(net, data.test_x, data.test_y, pre, device, amp_ctx, cfg.eval_batch, d, memory_format)
        st["eval_time"] += time.perf_counter() - t
        st["evals"].append(
            {
                "step": st["step"],
                "epoch": st["epoch"] + st["batch"] / steps_per_epoch,
                "test_loss": loss,
                "test_acc": acc,
            }
        )
        if tb:
            tb.add_scalar("test/acc", acc, st["step"])
            tb.add_scalar("test/loss", loss, st["step"])
        return loss, acc

    def write_files():
        if d.main:
            _write_csv(run_dir / "steps.csv", st["steps"])
            _write_csv(run_dir / "evals.csv", st["evals"])
            _write_csv(run_dir / "epochs.csv", st["epochs"])
            _write_json(run_dir / "layer_stats.json", st["layer_stats"])

    if st["step"] == 0 and not st["layer_stats"]:
        take_stats("init")

    pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # flushed every log_every steps

    def flush(bar):
        if not pending:
            return
        losses = torch.stack([p[0] for p in pending]).tolist()
        corrects = torch.stack([p[1] for p in pending]).tolist()
        first = st["step"] - len(pending) + 1
        for k, (loss, c, (_, _, n)) in enumerate(zip(losses, corrects, pending)):
            st["steps"].append(
                {"step": first + k, "epoch": st["epoch"], "loss": loss, "acc": c / n, "lr": opt.param_groups[0]["lr"]}
            )
            st["ep_loss"] += loss * n
            st["ep_correct"] += c
            st["ep_n"] += n
        if tb:
            tb.add_scalar("train/loss", losses[-1], st["step"])
        pending.clear()
        if bar is not None and st["ep_n"]:
            bar.set_postfix(
                loss=f"{st['ep_loss'] / st['ep_n']:.4f}",
                acc=f"{st['ep_correct'] / st['ep_n']:.4f}",
                img_s=f"{st['ep_n'] * d.world / max(st['train_time'] - st.get('ep_t0', 0.0), 1e-9):.0f}",
            )

    interrupted = False
    wall0 = time.perf_counter()
    try:
        while st["epoch"] < epochs:
            order = epoch_order(len(data.train_y), cfg.seed, st["epoch"], d)
            if st["batch"] == 0:
                st["ep_t0"] = st["train_time"]
                st["ep_loss"] = st["ep_correct"] = st["ep_n"] = 0.0
            bar = tqdm(
                total=steps_per_epoch,
                initial=st["batch"],
                desc=f"{cfg.act} epoch {st['epoch'] + 1}/{epochs}",
                disable=not (cfg.progress and d.main),
                leave=False,
                mininterval=1.0,
                dynamic_ncols=True,
            )
            net.train()
            t0 = time.perf_counter()
            while st["batch"] < steps_per_epoch:
                idx = order[st["batch"] * local_bs : (st["batch"] + 1) * local_bs]
                g = batch_generator(cfg.seed, st["epoch"], st["batch"], d.rank)
                xb, yb = pre.train(data.train_x[idx], data.train_y[idx], g)
                xb = xb.to(device, non_blocking=True, memory_format=memory_format)
                yb = yb.to(device, non_blocking=True)
                with amp_ctx():
                    out = net(xb)
                    loss = F.cross_entropy(out.float(), yb)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
                st["batch"] += 1
                st["step"] += 1
                pending.append((loss.detach(), (out.argmax(1) == yb).sum(), len(yb)))
                bar.update(1)
                if len(pending) >= cfg.log_every:
                    st["train_time"] += time.perf_counter() - t0
                    flush(bar)
                    t0 = time.perf_counter()
                if should_eval(st["step"], exp.eval_every) or (cfg.stats_every and st["step"] % cfg.stats_every == 0):
                    st["train_time"] += time.perf_counter() - t0
                    flush(bar)
                    if should_eval(st["step"], exp.eval_every):
                        do_eval()
                    if cfg.stats_every and st["step"] % cfg.stats_every == 0:
                        take_stats("step")
                    t0 = time.perf_counter()
                if cfg.stop_after is not None and st["step"] >= cfg.stop_after and st["batch"] < steps_per_epoch:
                    st["train_time"] += time.perf_counter() - t0
                    flush(bar)
                    raise KeyboardInterrupt
            st["train_time"] += time.perf_counter() - t0
            flush(bar)
            bar.close()
            tr = distributed.all_sum([st["ep_loss"], st["ep_correct"], st["ep_n"]], d)
            if not st["evals"] or st["evals"][-1]["step"] != st["step"]:
                do_eval()
            ev = st["evals"][-1]
            st["epoch"] += 1
            st["batch"] = 0
            sched.step()
            take_stats("epoch")
            row = {
                "epoch": st["epoch"],
                "step": st["step"],
                "train_loss": tr[0] / tr[2],
                "train_acc": tr[1] / tr[2],
                "test_loss": ev["test_loss"],
                "test_acc": ev["test_acc"],
                "epoch_train_s": st["train_time"] - st["ep_t0"],
                "images_per_s": tr[2] / max(st["train_time"] - st["ep_t0"], 1e-9),
                "lr": opt.param_groups[0]["lr"],
            }
            st["epochs"].append(row)
            if d.main:
                tqdm.write(
                    f"[{cfg.model} {cfg.act} {cfg.impl}] epoch {row['epoch']}/{epochs}: "
                    f"loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | test loss {row['test_loss']:.4f} "
                    f"acc {row['test_acc']:.4f} | {row['epoch_train_s']:.1f}s",
                    file=sys.stderr,
                )
            save_checkpoint()
            write_files()
            if cfg.stop_after is not None and st["step"] >= cfg.stop_after and st["epoch"] < epochs:
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        interrupted = True
        save_checkpoint()
        write_files()
        if d.main:
            print(f"interrupted at step {st['step']}; continue with --resume (checkpoint {ckpt_path})", file=sys.stderr)
    finally:
        if tb:
            tb.close()
    distributed.barrier(d)

    summary = summarize(
        cfg,
        st,
        epochs,
        batch_size,
        lr,
        data,
        d,
        device,
        use_amp,
        amp_dtype,
        steps_per_epoch,
        time.perf_counter() - wall0,
        interrupted,
    )
    if d.main:
        _write_json(run_dir / "summary.json", summary)
    return summary


def summarize(cfg, st, epochs, batch_size, lr, data, d, device, use_amp, amp_dtype, steps_per_epoch, wall, interrupted):
    exp = cfg.experiment
    ep = st["epochs"]
    evals = [(e["step"], e["test_acc"]) for e in st["evals"]]
    prev = {}
    summary_path = Path(cfg.out_dir) / "summary.json"
    if cfg.resume and summary_path.is_file():
        prev = json.loads(summary_path.read_text())
    return {
        "experiment": exp.name,
        "experiment_version": exp.version,
        "title": exp.title,
        "model": cfg.model,
        "act": cfg.act,
        "act_params": exp.act_params.get(cfg.act, {}),
        "impl": cfg.impl,
        "seed": cfg.seed,
        "command": cfg.command,
        "complete": not interrupted and len(ep) == epochs,
        "epochs_planned": epochs,
        "epochs_config": exp.epochs,
        "epochs_done": len(ep),
        "steps": st["step"],
        "steps_per_epoch": steps_per_epoch,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": exp.optimizer,
        "opt_args": exp.opt_args,
        "world_size": d.world,
        "amp": str(amp_dtype).replace("torch.", "") if use_amp else None,
        "channels_last": cfg.channels_last if cfg.channels_last is not None else cfg.model in CONV_MODELS,
        "dataset": exp.dataset,
        "data_source": data.source,
        "n_train": len(data.train_y),
        "n_test": len(data.test_y),
        "subset": cfg.subset,
        "test_subset": cfg.test_subset,
        "machine": machine_info(str(device)),
        "final_test_acc": ep[-1]["test_acc"] if ep else None,
        "final_train_acc": ep[-1]["train_acc"] if ep else None,
        "test_acc_per_epoch": [e["test_acc"] for e in ep],
        "train_acc_per_epoch": [e["train_acc"] for e in ep],
        "best_test_acc": max((a for _, a in evals), default=None),
        "sec_per_epoch": [e["epoch_train_s"] for e in ep],
        "train_time_s": st["train_time"],
        # samples per second of training (E3: 50 per step, the 25 drawn images and their copies)
        "images_per_s": st["step"] * batch_size / st["train_time"] if st["train_time"] else None,
        "eval_time_s": st["eval_time"],
        # a resumed run's wall time adds the sessions' train + eval time, not the idle gap between them
        "wall_time_s": (prev.get("wall_time_s", 0.0) if cfg.resume else 0.0) + wall,
        "steps_to": {str(t): steps_to_threshold(evals, t) for t in exp.thresholds},
        "eval_every": exp.eval_every,
        "stats_batch": cfg.stats_batch,
        "experiment_config": exp.to_dict(),
    }
