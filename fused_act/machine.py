"""The machine description written next to every benchmark and training result: CPU model and
ISA, threads, GPU model and peak bandwidth, torch / CUDA versions, git commit.

Shared by ``bench`` (results.json's "machine") and ``train`` (summary.json's "machine")."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import torch

import fused_act

REPO = Path(__file__).resolve().parent.parent  # the checkout, when fused_act runs from one


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit(repo: Path = REPO) -> str:
    """HEAD, with '+dirty' when the working tree differs from it (results of uncommitted code);
    'unknown' outside a git checkout (an installed fused_act)."""
    if not (repo / ".git").exists():  # a file in a worktree, a folder in a clone
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def gpu_peak_bandwidth(index: int = 0) -> float | None:
    """Theoretical DRAM bandwidth in bytes/s: 2 transfers per memory clock (DDR / HBM) x bus width."""
    props = torch.cuda.get_device_properties(index)
    clock_khz = getattr(props, "memory_clock_rate", 0)
    bus_bits = getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8


# Variables that pin an instruction set below the CPU's. ATen's own kernels and fused_act's follow
# ATEN_CPU_CAPABILITY; eager PyTorch's tanh (MKL's VML) and gelu (oneDNN) dispatch on their own
# and keep using AVX-512 under it: on the AVX-512 Intel Xeon, with ATEN_CPU_CAPABILITY=avx2, eager's
# tanh at 65,536 floats took 18.5 us, 78.0 with MKL_ENABLE_INSTRUCTIONS=AVX2 added
# (mkl_vml_kernel_sTanh_Z0HA -> _L9HA in perf), and gelu 28.1 -> 61.8 with ONEDNN_MAX_CPU_ISA=AVX2
# added, each variable moving only its op (timeit, best of 7, 2026-12-07 21:07 UTC).
# A comparison of AVX2 paths on an AVX-512 CPU needs all three, and its results name them.
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")


def isa_limits() -> str:
    """The ISA_LIMITS set in this process's environment, as `NAME=value` words ('' if none)."""
    return " ".join(f"{k}={os.environ[k]}" for k in ISA_LIMITS if os.environ.get(k))


def isa_text(d: dict) -> str:
    """'fused_act ISA AVX2' for a describe() result, with the ISA limits it ran under."""
    limits = d.get("isa_limits")
    return f"fused_act ISA {d.get('cpu_isa', '?')}" + (f" ({limits})" if limits else "")


def describe(device: str = "cpu") -> dict:
    """The machine and software a result was measured with. ``device`` is "cpu", "cuda" or
    "cuda:N"; the GPU keys describe that device (the current one for plain "cuda")."""
    info = fused_act.info()
    d = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git_commit": git_commit(),
        "cpu_model": cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_isa": info["cpu_isa"],
        "cpu_isa_bfloat16": info["cpu_isa_bfloat16"],
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_limits": isa_limits(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "fused_act": info["fused_act"],
        "cuda_kernels_built": info["cuda_kernels_built"],
        "device": device,
        "gpu": None,
    }
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        bw = gpu_peak_bandwidth(index)
        d.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            gpu_sm=f"{props.major}.{props.minor}",
            gpu_peak_bandwidth_gbs=round(bw / 1e9, 1) if bw else None,
        )
    return d
