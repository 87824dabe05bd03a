"""One training run: a model, an activation, an implementation, a seed.

Writes into its run dir: steps.csv (loss/accuracy every ``log_every`` steps), evals.csv (test
accuracy on the eval schedule), epochs.csv, layer_stats.json, summary.json and checkpoint.pt
(every epoch; ``resume=True`` continues from it to the same result as an uninterrupted run).

``Trainer`` holds one run's pieces (setup, checkpoint, training step, evaluation, epoch end,
summary); ``TrainState`` is the progress the checkpoint carries besides the tensors.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from fused_act.machine import describe

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
    """fused_act.machine.describe, plus the keys older summaries and train/report.py read."""
    info = describe(device)
    return {**info, "cpu": info["cpu_model"], "threads": info["torch_threads"], "cpu_count": os.cpu_count()}


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


@dataclass
class TrainState:
    """Everything of a run's progress that checkpoint.pt carries besides the model, optimizer,
    scheduler, scaler and RNG. The checkpoint holds it as the plain dict ``to_dict()`` (its "state":
    these keys in this order, as the loop wrote them before this class existed), so checkpoints
    move between versions; ``from_dict`` takes a missing ep_t0 as 0.0, as the loop always has."""

    epoch: int = 0  # epochs finished
    batch: int = 0  # batches done in the current epoch
    step: int = 0  # optimizer steps in all
    train_time: float = 0.0  # seconds, training steps only
    eval_time: float = 0.0
    steps: list[dict] = field(default_factory=list)  # the rows of steps.csv
    evals: list[dict] = field(default_factory=list)  # evals.csv
    epochs: list[dict] = field(default_factory=list)  # epochs.csv
    layer_stats: list[dict] = field(default_factory=list)  # layer_stats.json
    ep_loss: float = 0.0  # the current epoch's running sums (this process's samples)
    ep_correct: float = 0.0
    ep_n: float = 0.0
    ep_t0: float = 0.0  # train_time when the current epoch began

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> TrainState:
        unknown = d.keys() - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"checkpoint state has unknown keys {sorted(unknown)}")
        return cls(**d)

    def start_epoch(self) -> None:
        self.ep_t0 = self.train_time
        self.ep_loss = self.ep_correct = self.ep_n = 0.0


def run(cfg: RunConfig) -> dict:
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        return Trainer(cfg).run()
    finally:
        torch.use_deterministic_algorithms(was_deterministic)


class Trainer:
    """One run: ``Trainer(cfg)`` sets up data, model, optimizer and AMP; ``run()`` resumes from the
    checkpoint if asked, trains to the planned epochs (or an interruption) and writes the files."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.exp = exp = cfg.experiment
        self.d = d = distributed.init(cfg.device)
        self.device = torch.device(
            cfg.device if not cfg.device.startswith("cuda") or d.world == 1 else f"cuda:{d.local_rank}"
        )
        if self.device.type == "cpu":
            # the resume-equals-uninterrupted guarantee needs deterministic kernels
            torch.use_deterministic_algorithms(True, warn_only=True)
        self.epochs = cfg.epochs or exp.epochs
        self.batch_size = cfg.batch_size or exp.batch_size
        self.lr = cfg.lr or exp.lr
        self.run_dir = Path(cfg.out_dir)
        self.ckpt_path = self.run_dir / "checkpoint.pt"
        if d.main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self._setup_data()
        self._setup_model()
        self._setup_training()
        self.st = TrainState()
        self.tb = None
        self.pending: list[tuple[torch.Tensor, torch.Tensor, int]] = []  # steps not yet logged
        self._t0 = 0.0  # start of the training time being clocked

    # -- setup -------------------------------------------------------------------------------------

    def _setup_data(self) -> None:
        cfg, d = self.cfg, self.d
        self.data = data_mod.subset(
            data_mod.load(self.exp.dataset, cfg.data_dir, cfg.download), cfg.subset, cfg.test_subset
        )
        self.pre = Preprocess(self.exp.preprocess, self.data)
        per_step = self.batch_size // self.pre.samples_per_step_divisor  # images drawn from the set per step
        if per_step % d.world:
            raise SystemExit(f"batch {self.batch_size} does not split over {d.world} processes")
        self.local_bs = per_step // d.world
        n_local = len(epoch_order(len(self.data.train_y), cfg.seed, 0, d))
        self.steps_per_epoch = math.ceil(n_local / self.local_bs)

    def _setup_model(self) -> None:
        cfg, exp, data, device = self.cfg, self.exp, self.data, self.device
        torch.manual_seed(cfg.seed)
        act_params = exp.act_params.get(cfg.act, {})
        # model_args (e.g. the deep MLP's depth) belong to the experiment's own model, not to --model overrides
        model_args = exp.model_args if cfg.model == exp.runs[0][0] else {}
        self.model = model = build_model(
            cfg.model,
            self.pre.input_shape(data.shape),
            len(data.classes),
            cfg.act,
            cfg.impl,
            act_params,
            exp.init,
            **model_args,
        )
        # channels-last: oneDNN's and cuDNN's convolutions run NHWC natively, and fused_act's kernels keep
        # any dense layout, so no step converts a tensor (All-CNN-C step: 930 -> 780 ms here, train/README.md)
        self.channels_last = cfg.channels_last if cfg.channels_last is not None else cfg.model in CONV_MODELS
        self.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        model.to(device, memory_format=self.memory_format)

    def _setup_training(self) -> None:
        """Optimizer, LR schedule, AMP, the DDP wrapper and the layer-statistics batch."""
        cfg, exp, model, device = self.cfg, self.exp, self.model, self.device
        self.opt = make_optimizer(exp, model.parameters(), self.lr)
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, [m for m in exp.lr_milestones], 0.1)
        self.use_amp = cfg.amp if cfg.amp is not None else device.type == "cuda"
        self.amp_dtype = amp_dtype_for(device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.use_amp and self.amp_dtype == torch.float16)
        self.net = model
        if self.d.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.stats = LayerStats(model)
        self.stats_x = self.pre.test(self.data.train_x[: cfg.stats_batch]).to(device, memory_format=self.memory_format)
        self.stats_y = self.data.train_y[: cfg.stats_batch].to(device)

    def amp_ctx(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.use_amp else contextlib.nullcontext()

    # -- checkpoint and files ----------------------------------------------------------------------

    def load_checkpoint(self) -> None:
        """With cfg.resume, continue from checkpoint.pt if there is one."""
        if not (self.cfg.resume and self.ckpt_path.is_file()):
            return
        ck = torch.load(self.ckpt_path, weights_only=False)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        torch.set_rng_state(ck["rng"])
        self.st = TrainState.from_dict(ck["state"])
        if self.d.main:
            print(f"resumed {self.run_dir} at epoch {self.st.epoch} step {self.st.step}", file=sys.stderr)

    def save_checkpoint(self) -> None:
        if not self.d.main:
            return
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(
            {
                "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(),
                "scheduler": self.sched.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": torch.get_rng_state(),
                "state": self.st.to_dict(),
            },
            tmp,
        )
        os.replace(tmp, self.ckpt_path)

    def write_files(self) -> None:
        if self.d.main:
            _write_csv(self.run_dir / "steps.csv", self.st.steps)
            _write_csv(self.run_dir / "evals.csv", self.st.evals)
            _write_csv(self.run_dir / "epochs.csv", self.st.epochs)
            _write_json(self.run_dir / "layer_stats.json", self.st.layer_stats)

    # -- measurements ------------------------------------------------------------------------------

    def take_stats(self, tag: str) -> None:
        if self.d.main:
            st = self.st
            measured = self.stats.measure(self.stats_x, self.stats_y, F.cross_entropy)
            st.layer_stats.append({"step": st.step, "epoch": st.epoch, "tag": tag, **measured})

    def run_eval(self) -> None:
        """Test loss and accuracy now, appended to evals.csv's rows."""
        st, data = self.st, self.data
        t = time.perf_counter()
        loss, acc = evaluate(
            self.net,
            data.test_x,
            data.test_y,
            self.pre,
            self.device,
            self.amp_ctx,
            self.cfg.eval_batch,
            self.d,
            self.memory_format,
        )
        st.eval_time += time.perf_counter() - t
        st.evals.append(
            {"step": st.step, "epoch": st.epoch + st.batch / self.steps_per_epoch, "test_loss": loss, "test_acc": acc}
        )
        if self.tb:
            self.tb.add_scalar("test/acc", acc, st.step)
            self.tb.add_scalar("test/loss", loss, st.step)

    def flush(self, bar) -> None:
        """Log the pending steps (one device sync for all of them) into steps.csv's rows and the
        epoch's running sums."""
        st, pending = self.st, self.pending
        if not pending:
            return
        losses = torch.stack([p[0] for p in pending]).tolist()
        corrects = torch.stack([p[1] for p in pending]).tolist()
        first = st.step - len(pending) + 1
        lr = self.opt.param_groups[0]["lr"]
        for k, (loss, c, (_, _, n)) in enumerate(zip(losses, corrects, pending)):
            st.steps.append({"step": first + k, "epoch": st.epoch, "loss": loss, "acc": c / n, "lr": lr})
            st.ep_loss += loss * n
            st.ep_correct += c
            st.ep_n += n
        if self.tb:
            self.tb.add_scalar("train/loss", losses[-1], st.step)
        pending.clear()
        if bar is not None and st.ep_n:
            bar.set_postfix(
                loss=f"{st.ep_loss / st.ep_n:.4f}",
                acc=f"{st.ep_correct / st.ep_n:.4f}",
                img_s=f"{st.ep_n * self.d.world / max(st.train_time - st.ep_t0, 1e-9):.0f}",
            )

    # -- training ----------------------------------------------------------------------------------

    def _clock_on(self) -> None:
        self._t0 = time.perf_counter()

    def _clock_off(self, bar) -> None:
        """Stop clocking training time and log the pending steps (evaluation, statistics and
        logging are not training time)."""
        self.st.train_time += time.perf_counter() - self._t0
        self.flush(bar)

    def train_step(self, order: torch.Tensor) -> None:
        st, cfg = self.st, self.cfg
        idx = order[st.batch * self.local_bs : (st.batch + 1) * self.local_bs]
        g = batch_generator(cfg.seed, st.epoch, st.batch, self.d.rank)
        xb, yb = self.pre.train(self.data.train_x[idx], self.data.train_y[idx], g)
        xb = xb.to(self.device, non_blocking=True, memory_format=self.memory_format)
        yb = yb.to(self.device, non_blocking=True)
        with self.amp_ctx():
            out = self.net(xb)
            loss = F.cross_entropy(out.float(), yb)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        st.batch += 1
        st.step += 1
        self.pending.append((loss.detach(), (out.argmax(1) == yb).sum(), len(yb)))

    def after_step(self, bar) -> None:
        """Logging, evaluation and statistics on their schedules; the --stop-after interruption."""
        st, cfg = self.st, self.cfg
        if len(self.pending) >= cfg.log_every:
            self._clock_off(bar)
            self._clock_on()
        do_eval = should_eval(st.step, self.exp.eval_every)
        do_stats = cfg.stats_every and st.step % cfg.stats_every == 0
        if do_eval or do_stats:
            self._clock_off(bar)
            if do_eval:
                self.run_eval()
            if do_stats:
                self.take_stats("step")
            self._clock_on()
        if cfg.stop_after is not None and st.step >= cfg.stop_after and st.batch < self.steps_per_epoch:
            self._clock_off(bar)
            raise KeyboardInterrupt

    def train_epoch(self) -> None:
        """The rest of the current epoch (all of it, or what a resumed checkpoint left)."""
        st = self.st
        order = epoch_order(len(self.data.train_y), self.cfg.seed, st.epoch, self.d)
        if st.batch == 0:
            st.start_epoch()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=st.batch,
            desc=f"{self.cfg.act} epoch {st.epoch + 1}/{self.epochs}",
            disable=not (self.cfg.progress and self.d.main),
            leave=False,
            mininterval=1.0,
            dynamic_ncols=True,
        )
        self.net.train()
        self._clock_on()
        while st.batch < self.steps_per_epoch:
            self.train_step(order)
            bar.update(1)
            self.after_step(bar)
        self._clock_off(bar)
        bar.close()

    def end_epoch(self) -> None:
        """Evaluation (unless the schedule just did it), epochs.csv's row, statistics, checkpoint."""
        st = self.st
        tr = distributed.all_sum([st.ep_loss, st.ep_correct, st.ep_n], self.d)
        if not st.evals or st.evals[-1]["step"] != st.step:
            self.run_eval()
        ev = st.evals[-1]
        st.epoch += 1
        st.batch = 0
        self.sched.step()
        self.take_stats("epoch")
        row = {
            "epoch": st.epoch,
            "step": st.step,
            "train_loss": tr[0] / tr[2],
            "train_acc": tr[1] / tr[2],
            "test_loss": ev["test_loss"],
            "test_acc": ev["test_acc"],
            "epoch_train_s": st.train_time - st.ep_t0,
            "images_per_s": tr[2] / max(st.train_time - st.ep_t0, 1e-9),
            "lr": self.opt.param_groups[0]["lr"],
        }
        st.epochs.append(row)
        if self.d.main:
            tqdm.write(
                f"[{self.cfg.model} {self.cfg.act} {self.cfg.impl}] epoch {row['epoch']}/{self.epochs}: "
                f"loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | test loss {row['test_loss']:.4f} "
                f"acc {row['test_acc']:.4f} | {row['epoch_train_s']:.1f}s",
                file=sys.stderr,
            )
        self.save_checkpoint()
        self.write_files()

    def train(self) -> bool:
        """Epochs until the planned number; returns whether it was interrupted (Ctrl-C or
        --stop-after), in which case the checkpoint and files hold the progress so far."""
        st, cfg = self.st, self.cfg
        try:
            while st.epoch < self.epochs:
                self.train_epoch()
                self.end_epoch()
                if cfg.stop_after is not None and st.step >= cfg.stop_after and st.epoch < self.epochs:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            self.save_checkpoint()
            self.write_files()
            if self.d.main:
                print(
                    f"interrupted at step {st.step}; continue with --resume (checkpoint {self.ckpt_path})",
                    file=sys.stderr,
                )
            return True
        finally:
            if self.tb:
                self.tb.close()
        return False

    def run(self) -> dict:
        self.load_checkpoint()
        self.tb = _tensorboard(self.run_dir) if self.d.main else None
        if self.st.step == 0 and not self.st.layer_stats:
            self.take_stats("init")
        wall0 = time.perf_counter()
        interrupted = self.train()
        distributed.barrier(self.d)
        summary = self.summary(time.perf_counter() - wall0, interrupted)
        if self.d.main:
            _write_json(self.run_dir / "summary.json", summary)
        return summary

    # -- summary -----------------------------------------------------------------------------------

    def summary(self, wall: float, interrupted: bool) -> dict:
        cfg, exp, st, data = self.cfg, self.exp, self.st, self.data
        ep = st.epochs
        evals = [(e["step"], e["test_acc"]) for e in st.evals]
        prev = {}
        summary_path = self.run_dir / "summary.json"
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
            "complete": not interrupted and len(ep) == self.epochs,
            "epochs_planned": self.epochs,
            "epochs_config": exp.epochs,
            "epochs_done": len(ep),
            "steps": st.step,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "optimizer": exp.optimizer,
            "opt_args": exp.opt_args,
            "world_size": self.d.world,
            "amp": str(self.amp_dtype).replace("torch.", "") if self.use_amp else None,
            "channels_last": self.channels_last,
            "dataset": exp.dataset,
            "data_source": data.source,
            "n_train": len(data.train_y),
            "n_test": len(data.test_y),
            "subset": cfg.subset,
            "test_subset": cfg.test_subset,
            "machine": machine_info(str(self.device)),
            "final_test_acc": ep[-1]["test_acc"] if ep else None,
            "final_train_acc": ep[-1]["train_acc"] if ep else None,
            "test_acc_per_epoch": [e["test_acc"] for e in ep],
            "train_acc_per_epoch": [e["train_acc"] for e in ep],
            "best_test_acc": max((a for _, a in evals), default=None),
            "sec_per_epoch": [e["epoch_train_s"] for e in ep],
            "train_time_s": st.train_time,
            # samples per second of training (E3: 50 per step, the 25 drawn images and their copies)
            "images_per_s": st.step * self.batch_size / st.train_time if st.train_time else None,
            "eval_time_s": st.eval_time,
            # a resumed run's wall time adds the sessions' train + eval time, not the idle gap between them
            "wall_time_s": (prev.get("wall_time_s", 0.0) if cfg.resume else 0.0) + wall,
            "steps_to": {str(t): steps_to_threshold(evals, t) for t in exp.thresholds},
            "eval_every": exp.eval_every,
            "stats_batch": cfg.stats_batch,
            "experiment_config": exp.to_dict(),
        }
