"""Shared test helpers: devices, dtypes, tolerances and the parameter cases of every activation."""

from __future__ import annotations

import contextlib

import pytest
import torch

import fused_act
from fused_act.registry import ACTIVATIONS

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# Parameters beyond the defaults that change the code path: the input form of a backward that
# usually uses the output (negative slope, a = 0, alpha < 0), the tanh GELU, non-default ranges.
def param_cases():
    """(name, params) for every activation: defaults, then the extra cases."""
    for name, spec in ACTIVATIONS.items():
        yield name, dict(spec.params)
        for extra in spec.test_params:
            yield name, {**spec.params, **extra}


def case_id(case) -> str:
    name, params = case
    if params == ACTIVATIONS[name].params:
        return name
    return name + "-" + "-".join(f"{k}={v}" for k, v in params.items() if ACTIVATIONS[name].params[k] != v)


CASES = list(param_cases())
CASE_IDS = [case_id(c) for c in CASES]

# |ours - reference| <= atol + rtol * |reference|, reference = torch in float64 on the same
# (already rounded) input. Forward: a few ulps of the dtype (half/bf16 results are rounded
# once from float). Backward: reduced types also keep y rounded to the dtype, so derivatives
# written in y (1 - y^2, ...) carry that rounding as an absolute error of about one ulp.
FWD_TOL = {
    torch.float64: (1e-12, 1e-7),  # torch's hardsigmoid uses a float 1/6 even in float64
    torch.float32: (1e-6, 1e-5),
    torch.float16: (1e-5, 1.5e-3),
    torch.bfloat16: (1e-5, 1e-2),
}
BWD_TOL = {
    torch.float64: (1e-12, 1e-7),
    torch.float32: (1e-6, 1e-5),
    torch.float16: (2e-3, 2e-3),
    torch.bfloat16: (1.6e-2, 1.6e-2),
}


def assert_close(actual, expected, tol, what=""):
    """Compares with the reference rounded to actual's dtype (an overflowing result is inf)."""
    atol, rtol = tol
    expected = expected.to(actual.dtype)
    torch.testing.assert_close(
        actual.double(), expected.double(), atol=atol, rtol=rtol, equal_nan=True, msg=lambda m: f"{what}\n{m}"
    )


def sample_input(name: str, params: dict, dtype, device, n: int = 4099, seed: int = 0):
    """Values spread over where the activation changes: normal(0, 3) plus a wide uniform range,
    in the dtype, kept away from the kinks (kinks get their own test)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [
            torch.randn(n - n // 4, generator=g, dtype=torch.float64) * 3,
            (torch.rand(n // 4, generator=g, dtype=torch.float64) - 0.5) * 60,
        ]
    )
    x = x.to(dtype)
    for k in ACTIVATIONS[name].kinks(**params):
        x = torch.where((x.double() - k).abs() < 1e-2, x + 0.1, x)
    return x.to(device)


def assert_compiles_like_eager(model, x):
    """torch.compile(fullgraph=True, aot_eager) of model: same output and parameter gradients."""
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(x), model(x))
    compiled(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    model(x).sum().backward()
    for a, b in zip(grads, [p.grad for p in model.parameters()]):
        torch.testing.assert_close(a, b)


ISAS = ["default", "avx2", "avx512"]


def run_under_isa(isa: str, script: str) -> str:
    """Runs `script` in a fresh Python with the kernels of instruction set `isa` forced
    (ATEN_CPU_CAPABILITY is read at start-up) and returns its stdout, whose first word must be
    the set the kernels used. torch trusts the variable even where the CPU lacks the
    instructions (SIGILL), so sets this CPU or this build does not have are skipped."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    rank = {"DEFAULT": 0, "AVX2": 1, "AVX512": 2}
    if rank[isa.upper()] > rank.get(torch.backends.cpu.get_cpu_capability(), 0):
        pytest.skip(f"this CPU has no {isa}")
    if isa.upper() not in fused_act.info()["cpu_isas_built"]:
        pytest.skip(f"{isa} kernels not built")
    env = {**os.environ, "ATEN_CPU_CAPABILITY": isa}
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=root, timeout=600)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert out.stdout.split()[0] == isa.upper(), f"asked for {isa}, kernels ran {out.stdout.split()[0]}"
    return out.stdout


def kernel_args(name, params):
    return ACTIVATIONS[name].kernel_args(params)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


__all__ = ["fused_act"]


@contextlib.contextmanager
def simulated_cuda(threads):
    """Every op's CPU registration runs the CUDA kernels' per-thread bodies over `threads`
    simulated threads (csrc/simulation/) while the block runs."""
    torch.ops.fused_act._set_cuda_simulation(threads)
    try:
        yield
    finally:
        torch.ops.fused_act._set_cuda_simulation(0)
