"""``python -m bench.math_accuracy``: the maximum error of fused_act's inline float32 SIMD math
(csrc/activations/math.h) over every float32 input, against the C library in double, beside
ATen's own exp (SLEEF) and the normal CDF as eager's gelu writes it on ATen's erf (A&S 7.1.26 on
SLEEF exp). Compiles a small extension for this machine's best instruction set (AVX-512 or AVX2)
first (about a minute); each function's sweep of 2^32 inputs takes a few seconds per core.
Prints a Markdown table (docs/math.md holds the measured one).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils import cpp_extension

ROOT = Path(__file__).resolve().parent.parent
# (function, lowest input, highest input): where the activations use it.
FUNCTIONS = [
    ("exp", -104.0, 89.0),
    ("sleef_exp", -104.0, 89.0),
    ("exp_nonpos", -104.0, 0.0),
    ("expm1", -104.0, 89.0),
    ("expm1_nonpos", -104.0, 0.0),
    ("log", 1.2e-38, 3.4e38),
    ("log1p", -1.0, 3.4e38),
    ("log1p_unit", 0.0, 1.0),
    ("tanh", -3.4e38, 3.4e38),
    ("sigmoid", -3.4e38, 3.4e38),
    ("aten_sigmoid", -3.4e38, 3.4e38),
    ("normcdf", -3.4e38, 3.4e38),
    ("std_normal_cdf", -3.4e38, 3.4e38),
    ("aten_normcdf", -3.4e38, 3.4e38),
]
ISA_FLAGS = {
    "avx512": [
        "-mavx512f",
        "-mavx512bw",
        "-mavx512vl",
        "-mavx512dq",
        "-mfma",
        "-DCPU_CAPABILITY=AVX512",
        "-DCPU_CAPABILITY_AVX512",
    ],
    "avx2": ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
}


def build(source: str = "math_accuracy", opt: str = "-O2"):
    """Compiles bench/<source>.cpp against csrc/ for this machine's best instruction set:
    (module, "avx512" or "avx2")."""
    isa = torch.backends.cpu.get_cpu_capability().lower()
    isa = "avx512" if isa.startswith("avx512") else "avx2"
    module = cpp_extension.load(
        name=f"fused_act_{source}_{isa}",
        sources=[str(ROOT / "bench" / f"{source}.cpp")],
        extra_include_paths=[str(ROOT / "csrc")],
        extra_cflags=[opt, "-std=c++20", "-fopenmp", *ISA_FLAGS[isa]],
        verbose=False,
    )
    return module, isa


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--functions", nargs="+", default=[f for f, *_ in FUNCTIONS])
    args = p.parse_args(argv)
    module, isa = build()
    print(f"every float32 input in the range, {isa.upper()} build, torch {torch.__version__}\n")
    print("| function | inputs | max error (ulp) | at x | max abs error | at x |")
    print("|---|---|---|---|---|---|")
    for name, lo, hi in FUNCTIONS:
        if name not in args.functions:
            continue
        ulp, x_ulp, err, x_err = module.sweep(name, lo, hi)
        print(f"| {name} | [{lo:g}, {hi:g}] | {ulp:.2f} | {x_ulp:.6g} | {err:.3g} | {x_err:.6g} |", flush=True)
    if "exp_nonpos" in args.functions:
        n = module.exp_nonpos_mismatches()
        print(f"\ninputs x <= 0 where exp_nonpos's bits differ from exp's (NaN: a NaN on both): {n}")
    if "exp" in args.functions:
        n = module.exp_neg_mismatches()
        print(f"floats x where exp_neg(x)'s bits differ from exp(0 - x)'s (NaN: a NaN on both): {n}")


if __name__ == "__main__":
    main()
