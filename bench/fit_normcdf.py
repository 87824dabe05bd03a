"""``python -m bench.fit_normcdf``: fits the rational erf of the float32 SIMD normcdf
(csrc/activations/math.h, gelu's forward): erf(z) = z P(z^2) / Q(z^2) on [0, c], Q(0) = 1,
toward the minimax relative error. Prints the coefficients rounded to float32 and the fit's
error before and after that rounding (double arithmetic; the float32 evaluation's error over
every input is bench.math_accuracy's).

The fit is linearized least squares (P - erf(z)/z Q = 0 at 4,000 Chebyshev-spaced nodes,
divided by the previous iteration's Q so that it converges to the rational fit) with Lawson's
weights (multiplied by each node's error every iteration), which move the least-squares
solution toward the equioscillating minimax one.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

# Beyond c the SIMD form clamps z. erf(4.1) = 1 - 7e-9; what matters is that the float32
# evaluation at c gives exactly 1 (printed below): then Phi is exactly 0 and 1 in the tails and
# gelu(-1e30) is 0, not 1e30 times an ulp (at c = 3.925 or 4.0 it gives 1 -+ 1 ulp).
CLAMP = 4.1


def fit(p_degree: int, q_degree: int, c: float, iterations: int = 60, nodes: int = 4000):
    z = c * (1 - np.cos(np.linspace(0, np.pi, nodes))) / 2
    z[0] = 1e-6  # erf(z)/z -> 2/sqrt(pi) at 0
    f = np.array([math.erf(t) / t for t in z])
    w = z * z
    powers_p = np.vstack([w**k for k in range(p_degree + 1)]).T
    powers_q = np.vstack([w**k for k in range(q_degree + 1)]).T
    weight = np.ones(nodes)
    q_prev = np.ones(nodes)
    for _ in range(iterations):
        scale = np.sqrt(weight) / (f * q_prev)  # relative error, linearized around the last Q
        a = np.hstack([powers_p, -f[:, None] * powers_q[:, 1:]]) * scale[:, None]
        coef, *_ = np.linalg.lstsq(a, f * scale, rcond=None)
        p = coef[: p_degree + 1]
        q = np.concatenate([[1.0], coef[p_degree + 1 :]])
        q_prev = powers_q @ q
        err = (powers_p @ p) / q_prev / f - 1
        weight = np.maximum(weight * np.abs(err), 1e-300)
        weight /= weight.sum()
    return p, q


def max_relative_error(p, q, c: float) -> float:
    z = np.linspace(1e-6, c, 200_001)
    w = z * z
    approx = z * np.polyval(p[::-1], w) / np.polyval(q[::-1], w)
    return float(np.abs(approx / np.array([math.erf(t) for t in z]) - 1).max())


def float32_at(p, q, c: float) -> np.float32:
    """z P(z^2) / Q(z^2) at z = c as the SIMD code evaluates it: Horner by fused multiply-adds
    (emulated in double, where the product of two floats is exact, then rounded to float32),
    then the product and the division, each rounded to float32."""
    f = np.float32
    z = f(c)
    w = f(z * z)

    def horner(coefs):
        acc = f(coefs[-1])
        for k in coefs[-2::-1]:
            acc = f(np.float64(acc) * np.float64(w) + np.float64(f(k)))
        return acc

    return f(f(z * horner(p)) / horner(q))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--degrees", nargs=2, type=int, default=[5, 5], metavar=("P", "Q"))
    ap.add_argument("--clamp", type=float, default=CLAMP)
    args = ap.parse_args(argv)
    p, q = fit(*args.degrees, args.clamp)
    p32, q32 = p.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64)
    print(f"erf(z) = z P(z^2) / Q(z^2) on [0, {args.clamp}], degrees {args.degrees[0]} / {args.degrees[1]}")
    print(
        f"max relative error: {max_relative_error(p, q, args.clamp):.3g} (double coefficients), "
        f"{max_relative_error(p32, q32, args.clamp):.3g} (rounded to float32)"
    )
    print(f"float32 value at the clamp: {float(float32_at(p32, q32, args.clamp))!r} (must be 1.0)")
    print("P:", ", ".join(f"{v:.9g}f" for v in p32))
    print("Q:", ", ".join(f"{v:.9g}f" for v in q32))


if __name__ == "__main__":
    main()
