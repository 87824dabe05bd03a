"""The machine description written next to every result; it lives in fused_act/machine.py,
shared with train's summaries."""

from fused_act.machine import REPO, cpu_model, describe, git_commit, gpu_peak_bandwidth, isa_text

__all__ = ["REPO", "cpu_model", "describe", "git_commit", "gpu_peak_bandwidth", "isa_text"]
