"""``python -m bench.sigmoid_forms``: what bounds float32 sigmoid's and tanh's forwards here.
Times, in one binary compiled with the kernels' -O3 for this machine's best instruction set
(AVX-512 or AVX2), one thread, in L1, interleaved:

  sigmoid (the functor's)     csrc/activations/math.h's sigmoid, what the kernels run
  division form               1 / (1 + exp(-x))
  reflection form             n / (1 + exp_nonpos(-|x|)), n = 1 for x >= 0, else the exp
  exp alone                   csrc/activations/math.h's exp
  exp(-x) + 1                 the division form without its division
  division alone              1 / (x + 2)
  eleven chained FMAs         as many FMAs as AVX-512's exp has instructions that may need the
                              FMA pipes (nine FMAs, a subtraction, vscalefps)
  tanh (the functor's)        csrc/activations/math.h's tanh, x P(x^2) / Q(x^2): near "division
                              alone", the divider bounds it

Where "exp(-x) + 1" takes the FMA chain's time, exp runs at the FMA pipes' throughput and only
fewer of those instructions (a less accurate exp) make sigmoid faster; docs/math.md has the
measured table.
"""

from __future__ import annotations

import argparse

import torch

from .machine import describe
from .math_accuracy import build


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4096, help="floats per pass (stay in L1)")
    p.add_argument("--reps", type=int, default=2000, help="passes per timing")
    p.add_argument("--rounds", type=int, default=15, help="interleaved timings per form (median)")
    args = p.parse_args(argv)
    module, isa = build("sigmoid_forms", "-O3")
    torch.set_num_threads(1)
    d = describe()
    print(f"{d['date']}, {d['cpu_model']}, {isa.upper()} build, one thread, {args.n} floats in L1")
    print(f"medians of {args.rounds} interleaved timings of {args.reps} passes\n")
    print("| form | ns per element |")
    print("|---|---|")
    for name, ns in sorted(module.run(args.n, args.reps, args.rounds).items(), key=lambda kv: kv[1]):
        print(f"| {name} | {ns:.4f} |")


if __name__ == "__main__":
    main()
