"""Runs cases and writes one row per (case, provider or baseline) to CSV and JSON.

Row fields (the CSV columns; bench/README.md explains them):
  case fields      act dtype size mode variant threads device
  provider         fused | eager | compile | copy | clone
  median_s q25_s q75_s n     per-call time over all rounds
  bytes            what the op must move (cases.traffic); GB/s = bytes / median
  gbs
  limit_s          memory-bandwidth limit from copy_/clone timed in this case (cases.limit_seconds)
  ratio_limit      median / limit_s (1.0 = at the limit)
  ratio_fused      median / fused's median in this case (> 1: fused is faster)
  min_s, min_ratio_limit, min_ratio_fused
                   the same from the fastest call of each (robust to other processes' load)
  compile_s        compile provider: wall time of the first call (compilation), not in median_s
  saved_bytes      fwdbwd alloc: bytes autograd saves for backward (memory.saved_bytes)
  peak_bytes       CUDA: peak memory of one call above what was allocated before it
  load1            1-minute load average when the case started (other processes on the machine)
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

import torch

from . import machine, memory
from .cases import Case, limit_seconds, traffic
from .providers import Tensors, baselines, build
from .timing import measure

FIELDS = [
    "act",
    "dtype",
    "size",
    "mode",
    "variant",
    "threads",
    "device",
    "provider",
    "median_s",
    "q25_s",
    "q75_s",
    "n",
    "min_s",
    "bytes",
    "gbs",
    "limit_s",
    "ratio_limit",
    "ratio_fused",
    "min_ratio_limit",
    "min_ratio_fused",
    "compile_s",
    "saved_bytes",
    "peak_bytes",
    "load1",
]


def run_case(case: Case, rounds: int = 7, warmup: int = 1) -> list[dict]:
    torch.set_num_threads(case.threads)
    load1 = round(os.getloadavg()[0], 2)
    t = Tensors(case)
    runners, extra = {}, {}
    for p in case.providers:
        try:
            b = build(p, case, t)
            if b is None:
                continue
            if b.runner.setup is not None:
                b.runner.setup()
            b.runner.fn()  # fails here rather than mid-measurement (e.g. an in-place form autograd refuses)
        except RuntimeError as e:
            print(f"    {p}: skipped ({str(e).splitlines()[0][:100]})", file=sys.stderr)
            continue
        runners[p] = b.runner
        extra[p] = {"compile_s": b.compile_s}
        if b.graph_fn is not None:
            extra[p]["saved_bytes"] = memory.saved_bytes(b.graph_fn)
        if case.device == "cuda":
            extra[p]["peak_bytes"] = memory.cuda_peak_bytes(b.runner.fn)
    runners.update(baselines(case, t))
    stats = measure(runners, case.device, rounds=rounds, warmup=warmup)
    nbytes, _ = traffic(case)
    limit = limit_seconds(case, stats["copy"].median, stats["clone"].median)
    min_limit = limit_seconds(case, stats["copy"].min, stats["clone"].min)
    fused = stats.get("fused")
    rows = []
    for p, s in stats.items():
        base = p in ("copy", "clone")
        b = 2 * case.size * case.elem if base else nbytes
        row = {
            **case.as_dict(),
            "provider": p,
            "median_s": s.median,
            "q25_s": s.q25,
            "q75_s": s.q75,
            "n": s.n,
            "bytes": b,
            "gbs": b / s.median / 1e9,
            "limit_s": None if base else limit,
            "ratio_limit": None if base else s.median / limit,
            "ratio_fused": None if base or fused is None else s.median / fused.median,
            "min_s": s.min,
            "min_ratio_limit": None if base else s.min / min_limit,
            "min_ratio_fused": None if base or fused is None else s.min / fused.min,
            "load1": load1,
            "compile_s": None,
            "saved_bytes": None,
            "peak_bytes": None,
        }
        row.update(extra.get(p, {}))
        rows.append(row)
    return rows


def write(rows: list[dict], meta: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        w.writerows(rows)
    (out / "results.json").write_text(json.dumps({"machine": meta, "rows": rows}, indent=1))


def load(out: Path) -> tuple[dict, list[dict]]:
    d = json.loads((out / "results.json").read_text())
    return d["machine"], d["rows"]


def run(
    cases: list[Case], out: Path, command: str, rounds: int = 7, warmup: int = 1, sections=None
) -> tuple[dict, list[dict]]:
    device = cases[0].device if cases else "cpu"
    threads0 = torch.get_num_threads()
    meta = machine.describe(device)
    meta.update(
        command=command,
        rounds=rounds,
        warmup=warmup,
        sections=sections or [],
        load_start=[round(v, 2) for v in os.getloadavg()],
    )
    # compile_s is what compiling costs, not a lookup in inductor's on-disk caches from an earlier run
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    inductor_config.fx_graph_cache = False
    if hasattr(functorch_config, "enable_autograd_cache"):
        functorch_config.enable_autograd_cache = False
    rows: list[dict] = []
    t0 = time.time()
    try:
        for i, c in enumerate(cases):
            print(
                f"[{i + 1}/{len(cases)} {time.time() - t0:6.0f}s] {c.act} {c.dtype} 2^{c.size.bit_length() - 1} "
                f"{c.mode}/{c.variant} threads={c.threads} {','.join(c.providers)}",
                file=sys.stderr,
                flush=True,
            )
            rows += run_case(c, rounds, warmup)
            if (i + 1) % 10 == 0:  # partial results survive an interrupted run
                write(rows, {**meta, "partial": True}, out)
    finally:
        torch.set_num_threads(threads0)
    meta["wall_s"] = round(time.time() - t0, 1)
    meta["load_end"] = [round(v, 2) for v in os.getloadavg()]
    write(rows, meta, out)
    return meta, rows
