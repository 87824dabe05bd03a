"""``python -m bench.fit_rational erf|tanh|log1p``: fits the rational and polynomial forms of the
float32 SIMD math (csrc/activations/math.h) toward the minimax relative error:

  erf    normcdf's erf (gelu's forward), z P(z^2) / Q(z^2) on [0, 4.1], degrees 5 / 5
  tanh   tanh's (tanh, rescaled_sigmoid, leaky_tanh), z P(z^2) / Q(z^2) on [0, 8.5], degrees 4 / 4
  log1p  log1p_unit's (softplus, logsigmoid), u P(u) on [0, 1], P of degree 10, Q = 1, P(0) = 1:
         the SIMD code runs it as u + u^2 P'(u), P = 1 + u P'(u)

Prints the coefficients rounded to float32, the fit's error before and after that rounding
(double arithmetic), and the float32 evaluation as the SIMD code runs it (Horner by FMAs, the
product, the division, for the odd forms the clamp of the result to 1; u + u^2 P'(u) for log1p)
on a dense grid, in ulp of the float32 result; bench.math_accuracy sweeps every float32 input of
the real code.

The fit is linearized least squares (P - f(z)/z Q = 0 at 4,000 Chebyshev-spaced nodes,
divided by the previous iteration's Q so that it converges to the rational fit) with Lawson's
weights (multiplied by each node's error every iteration), which move the least-squares
solution toward the equioscillating minimax one.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

# name: (function, degrees of P and Q, clamp c, odd). odd: f(z) = z P(z^2) / Q(z^2), else
# f(u) = u P(u) / Q(u) on [0, c]. Beyond c the odd SIMD forms clamp z; what matters is that the
# float32 evaluation at c gives exactly 1 (printed below), so that the function's tails are
# exact: for erf, Phi is then exactly 0 and 1 and gelu(-1e30) is 0, not 1e30 times an ulp (at c
# = 3.925 or 4.0 it gives 1 -+ 1 ulp); for tanh, tanh(x) is 1 from x = c on (float32 tanh is 1
# from 9.01 on, 1 - 2^-24 from 8.67: one ulp at most in between). Degrees: the lowest whose
# float32 evaluation stays within a few ulp (tanh at 4 / 3, XNNPACK's 9 / 6 form: 8.5 ulp); for
# log1p the lowest that beats Cephes' logf (1.39 ulp): degrees 8 / 9 / 10 evaluate to 1.97 / 1.50
# / 1.21 ulp on the grid.
FUNCTIONS = {
    "erf": (math.erf, (5, 5), 4.1, True),
    "tanh": (math.tanh, (4, 4), 8.5, True),
    "log1p": (math.log1p, (10, 0), 1.0, False),
}


def fit(f, p_degree: int, q_degree: int, c: float, odd: bool = True, iterations: int = 60, nodes: int = 4000):
    z = c * (1 - np.cos(np.linspace(0, np.pi, nodes))) / 2
    z[0] = 1e-6  # f(z)/z -> f'(0) at 0
    y = np.array([f(t) / t for t in z])
    w = z * z if odd else z
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


def max_relative_error(f, p, q, c: float, odd: bool = True) -> float:
    z = np.linspace(1e-6, c, 200_001)
    w = z * z if odd else z
    approx = z * np.polyval(p[::-1], w) / np.polyval(q[::-1], w)
    return float(np.abs(approx / np.array([f(t) for t in z]) - 1).max())


def float32_eval(p, q, c: float, z: np.ndarray, odd: bool = True) -> np.ndarray:
    """As the SIMD code evaluates the fit: odd, min(z P(z^2) / Q(z^2), 1) at min(z, c), Horner
    by fused multiply-adds (emulated in double, where the product of two floats is exact, then
    rounded to float32), then the product and the division, each rounded to float32; else
    (P(0) = 1, Q = 1) u + u^2 P'(u) with P = 1 + u P'(u): Horner for P', u^2 rounded, one FMA."""
    f = np.float32
    z = np.minimum(np.asarray(z, dtype=f), f(c))
    w = z * z if odd else z

    def horner(coefs):
        acc = np.full_like(w, f(coefs[-1]))
        for k in coefs[-2::-1]:
            acc = (acc.astype(np.float64) * w + np.float64(f(k))).astype(f)
        return acc

    if odd:
        return np.minimum((z * horner(p)) / horner(q), f(1))
    assert f(p[0]) == 1 and len(q) == 1, "the plain form needs P(0) = 1 and Q = 1"
    return ((z * z).astype(np.float64) * horner(p[1:]) + z).astype(f)


def float32_max_ulp(f, p, q, c: float, odd: bool = True) -> tuple[float, float]:
    """Largest error of float32_eval on a dense grid of [0, c + 1] (odd: past the clamp), else
    of [0, c], in ulp of the float32 result (spacing of |f(z)| rounded to float32), and where."""
    z = np.linspace(0, c + 1 if odd else c, 4_000_001, dtype=np.float32)[1:]
    exact = np.array([f(float(t)) for t in z])
    ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    err = np.abs(float32_eval(p, q, c, z, odd) - exact) / ulp
    return float(err.max()), float(z[err.argmax()])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("function", choices=sorted(FUNCTIONS))
    ap.add_argument("--degrees", nargs=2, type=int, metavar=("P", "Q"))
    ap.add_argument("--clamp", type=float)
    args = ap.parse_args(argv)
    f, degrees, c, odd = FUNCTIONS[args.function]
    degrees = args.degrees or degrees
    c = args.clamp or c
    p, q = fit(f, *degrees, c, odd)
    p32, q32 = p.astype(np.float32).astype(np.float64), q.astype(np.float32).astype(np.float64)
    form = "z P(z^2) / Q(z^2)" if odd else "z P(z) / Q(z), run as z + z^2 P'(z)"
    print(f"{args.function}(z) = {form} on [0, {c}], degrees {degrees[0]} / {degrees[1]}")
    print(
        f"max relative error: {max_relative_error(f, p, q, c, odd):.3g} (double coefficients), "
        f"{max_relative_error(f, p32, q32, c, odd):.3g} (rounded to float32)"
    )
    if odd:
        print(f"float32 value at the clamp: {float(float32_eval(p32, q32, c, [c])[0])!r} (must be 1.0)")
    ulp, at = float32_max_ulp(f, p32, q32, c, odd)
    print(f"float32 evaluation on [0, {c + 1 if odd else c:g}] (4M points): {ulp:.2f} ulp at {at:.7g}")
    print("P:", ", ".join(f"{v:.9g}f" for v in p32))
    print("Q:", ", ".join(f"{v:.9g}f" for v in q32))


if __name__ == "__main__":
    main()
