"""``python -m bench.fit_rational erf|tanh``: fits the odd rational functions of the float32 SIMD
math (csrc/activations/math.h), f(z) = z P(z^2) / Q(z^2) on [0, c], Q(0) = 1, toward the
minimax relative error:

  erf   normcdf's erf (gelu's forward), degrees 5 / 5, c = 4.1
  tanh  tanh's (tanh, rescaled_sigmoid, leaky_tanh), degrees 4 / 4, c = 8.5

Prints the coefficients rounded to float32, the fit's error before and after that rounding
(double arithmetic), and the float32 evaluation as the SIMD code runs it (Horner by FMAs, the
product, the division, the clamp of the result to 1) on a dense grid of [0, c + 1], in ulp of
the float32 result; bench.math_accuracy sweeps every float32 input of the real code.

The fit is linearized least squares (P - f(z)/z Q = 0 at 4,000 Chebyshev-spaced nodes,
divided by the previous iteration's Q so that it converges to the rational fit) with Lawson's
weights (multiplied by each node's error every iteration), which move the least-squares
solution toward the equioscillating minimax one.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

# name: (function, degrees of P and Q, clamp c). Beyond c the SIMD forms clamp z; what matters
# is that the float32 evaluation at c gives exactly 1 (printed below), so that the function's
# tails are exact: for erf, Phi is then exactly 0 and 1 and gelu(-1e30) is 0, not 1e30 times an
# ulp (at c = 3.925 or 4.0 it gives 1 -+ 1 ulp); for tanh, tanh(x) is 1 from x = c on (float32
# tanh is 1 from 9.01 on, 1 - 2^-24 from 8.67: one ulp at most in between). Degrees: the lowest
# whose float32 evaluation stays within a few ulp (tanh at 4 / 3, XNNPACK's 9 / 6 form: 8.5 ulp).
FUNCTIONS = {"erf": (math.erf, (5, 5), 4.1), "tanh": (math.tanh, (4, 4), 8.5)}


def fit(f, p_degree: int, q_degree: int, c: float, iterations: int = 60, nodes: int = 4000):
    z = c * (1 - np.cos(np.linspace(0, np.pi, nodes))) / 2
    z[0] = 1e-6  # f(z)/z -> f'(0) at 0
    y = np.array([f(t) / t for t in z])
    w = z * z
    powers_p = np.vstack([w**k for k in range(p_degree + 1)]).T
    powers_q = np.vstack([w**k for k in range(q_degree + 1)]).T
    weight = np.ones(nodes)
    q_prev = np.ones(nodes)
    for _ in range(iterations):
        scale = np.sqrt(weight) / (y * q_prev)  # relative error, linearized around the last Q
        a = np.hstack([powers_p, -y[:, None] * powers_q[:, 1:]]) * scale[:, None]
        coef, *_ = np.linalg.lstsq(a, y * scale, rcond=None)
        p = coef[: p_degree + 1]
        q = np.concatenate([[1.0], coef[p_degree + 1 :]])
        q_prev = powers_q @ q
        err = (powers_p @ p) / q_prev / y - 1
        weight = np.maximum(weight * np.abs(err), 1e-300)
        weight /= weight.sum()
    return p, q


def max_relative_error(f, p, q, c: float) -> float:
    z = np.linspace(1e-6, c, 200_001)
    w = z * z
    approx = z * np.polyval(p[::-1], w) / np.polyval(q[::-1], w)
    return float(np.abs(approx / np.array([f(t) for t in z]) - 1).max())


def float32_eval(p, q, c: float, z: np.ndarray) -> np.ndarray:
    """min(z P(z^2) / Q(z^2), 1) at min(z, c) as the SIMD code evaluates it: Horner by fused
    multiply-adds (emulated in double, where the product of two floats is exact, then rounded to
    float32), then the product and the division, each rounded to float32."""
    f = np.float32
    z = np.minimum(np.asarray(z, dtype=f), f(c))
    w = z * z

    def horner(coefs):
        acc = np.full_like(w, f(coefs[-1]))
        for k in coefs[-2::-1]:
            acc = (acc.astype(np.float64) * w + np.float64(f(k))).astype(f)
        return acc

    return np.minimum((z * horner(p)) / horner(q), f(1))


def float32_max_ulp(f, p, q, c: float) -> tuple[float, float]:
    """Largest error of float32_eval on a dense grid of [0, c + 1] in ulp of the float32 result
    (spacing of |f(z)| rounded to float32), and where."""
    z = np.linspace(0, c + 1, 4_000_001, dtype=np.float32)[1:]
    exact = np.array([f(float(t)) for t in z])
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    err = np.abs(float32_eval(p, q, c, z) - exact) / ulp
    return float(err.max()), float(z[err.argmax()])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("function", choices=sorted(FUNCTIONS))
    ap.add_argument("--degrees", nargs=2, type=int, metavar=("P", "Q"))
    ap.add_argument("--clamp", type=float)
    args = ap.parse_args(argv)
    f, degrees, c = FUNCTIONS[args.function]
    degrees = args.degrees or degrees
    c = args.clamp or c
    p, q = fit(f, *degrees, c)
    p32, q32 = p.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64)
    print(f"{args.function}(z) = z P(z^2) / Q(z^2) on [0, {c}], degrees {degrees[0]} / {degrees[1]}")
    print(
        f"max relative error: {max_relative_error(f, p, q, c):.3g} (double coefficients), "
        f"{max_relative_error(f, p32, q32, c):.3g} (rounded to float32)"
    )
    print(f"float32 value at the clamp: {float(float32_eval(p32, q32, c, [c])[0])!r} (must be 1.0)")
    ulp, at = float32_max_ulp(f, p32, q32, c)
    print(f"float32 evaluation on [0, {c + 1:g}] (4M points): {ulp:.2f} ulp at {at:.7g}")
    print("P:", ", ".join(f"{v:.9g}f" for v in p32))
    print("Q:", ", ".join(f"{v:.9g}f" for v in q32))


if __name__ == "__main__":
    main()
