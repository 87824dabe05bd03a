"""What to measure: benchmark cases generated from the activation registry, and the bytes
each case must move.

A case is one activation x dtype x size x mode x variant x thread count; the providers
(fused_act, eager, torch.compile) and the memory baselines (``copy_`` into an existing
buffer, ``clone``) are all timed inside the same case, interleaved, so their ratios are
measured under the same machine load.

Nothing here names an activation except the small "sweep" and "quick" subsets: every
activation in ``fused_act.ACTIVATIONS`` gets cases, so a new one is benchmarked without edits.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass, field

import torch

from fused_act.ops import saved_for
from fused_act.registry import ACTIVATIONS

MODES = ("fwd", "bwd", "fwdbwd")
VARIANTS = ("alloc", "inplace")
PROVIDERS = ("fused", "eager", "compile")
BASELINES = ("copy", "clone")  # memory-bandwidth limit: into an existing buffer / a fresh one
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


@dataclass(frozen=True)
class Case:
    act: str
    dtype: str
    size: int  # elements, a 1-D contiguous tensor
    mode: str  # fwd | bwd | fwdbwd
    variant: str  # alloc (fresh outputs) | inplace (forward writes into an existing buffer)
    threads: int
    device: str = "cpu"
    providers: tuple[str, ...] = PROVIDERS

    @property
    def key(self) -> tuple:
        return (self.device, self.threads, self.dtype, self.size, self.act, self.mode, self.variant)

    @property
    def spec(self):
        return ACTIVATIONS[self.act]

    @property
    def kernel(self) -> tuple[str, list[float]]:
        return self.spec.kernel_args({})

    @property
    def saved(self) -> str:
        """What backward keeps: 'none' (identity), 'input' or 'output'."""
        name, params = self.kernel
        return saved_for(name, tuple(params))

    @property
    def elem(self) -> int:
        return torch.empty((), dtype=DTYPES[self.dtype]).element_size()

    def as_dict(self) -> dict:
        d = asdict(self)
        d.pop("providers")
        return d


def valid(case: Case) -> bool:
    """Backward of identity is the incoming gradient itself: nothing to time. There is no
    preallocated form of backward (the backward op always allocates grad_x)."""
    if case.mode == "bwd" and (case.saved == "none" or case.variant == "inplace"):
        return False
    return True


# ------------------------------------------------------------------ byte accounting


def traffic(case: Case) -> tuple[int, int]:
    """(bytes, fresh outputs) the op must at least move / allocate.

    Bytes count each tensor the op must read or write once (the issue's like-for-like rule):
      fwd     read x, write y                         2N
      bwd     read saved (x or y) and grad, write dx   3N
      fwdbwd  read x and grad, write y and dx          4N  (2N when backward is a pass-through)
              in place, when backward needs x: 6N, as the forward overwrites x, the copy of it
              that backward reads must be written too (torch's in-place autograd keeps one)
    Fresh outputs are the tensors that a fresh allocation (page faults on first touch) must
    back: forward in place writes into an existing buffer (the kept copy of x is fresh),
    backward always allocates dx.
    """
    n, e = case.size, case.elem
    passthrough = case.saved == "none"
    if case.mode == "fwd":
        return 2 * n * e, 1 if case.variant == "alloc" else 0
    if case.mode == "bwd":
        return 3 * n * e, 1
    if passthrough:
        return 2 * n * e, 1 if case.variant == "alloc" else 0
    if case.variant == "inplace" and case.saved == "input":
        return 6 * n * e, 2
    return 4 * n * e, 2 if case.variant == "alloc" else 1


def limit_seconds(case: Case, t_copy: float, t_clone: float) -> float:
    """The memory-bandwidth limit for this case, from a same-size ``copy_`` (2N bytes into an
    existing buffer) and ``clone`` (2N bytes into a fresh tensor) timed in the same case: each
    fresh output is charged one clone, the remaining bytes at copy_'s rate."""
    nbytes, fresh = traffic(case)
    copy_bytes = 2 * case.size * case.elem
    return fresh * t_clone + (nbytes / copy_bytes - fresh) * t_copy


# ------------------------------------------------------------------ plans


def all_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class Section:
    """A product of choices; a plan is a list of sections (cases shared between sections are
    measured once, with the union of their providers)."""

    title: str
    acts: list[str] = field(default_factory=lambda: list(ACTIVATIONS))
    dtypes: list[str] = field(default_factory=lambda: ["float32"])
    sizes: list[int] = field(default_factory=lambda: [1 << 24])
    modes: list[str] = field(default_factory=lambda: list(MODES))
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    providers: list[str] = field(default_factory=lambda: list(PROVIDERS))
    threads: list[int] = field(default_factory=lambda: [all_threads()])

    def cases(self, device: str) -> list[Case]:
        out = []
        for t, dt, n, act, mode, var in itertools.product(
            self.threads, self.dtypes, self.sizes, self.acts, self.modes, self.variants
        ):
            c = Case(act, dt, n, mode, var, t, device, tuple(self.providers))
            if valid(c):
                out.append(c)
        return out


# A few activations that span the range: max-like (relu), transcendental (gelu, mish),
# a composition eager runs as several ops (softsign).
SWEEP_ACTS = ["relu", "gelu", "softsign", "mish"]
# eager runs these as several ATen ops (ActivationSpec.composite, counted from the reference)
COMPOSITE_ACTS = [name for name, spec in ACTIVATIONS.items() if spec.composite]


def plan(name: str, device: str = "cpu") -> list[Section]:
    """Named plans. 'full' is the committed report for a machine; 'quick' a minute-scale subset."""
    cores = all_threads()
    big = 1 << 24
    if name == "full":
        sizes_sweep = [1 << k for k in (12, 16, 20, 24, 26)]
        sections = [
            Section("headline: every activation, every mode, float32, 2^24"),
            Section(
                "fused vs eager: float32 and bfloat16, 2^16 / 2^20 / 2^24",
                dtypes=["float32", "bfloat16"],
                sizes=[1 << 16, 1 << 20, big],
                modes=["fwd", "fwdbwd"],
                variants=["alloc"],
                providers=["fused", "eager"],
            ),
            # the two forms the size plots show: in place forward vs copy_, allocating fwd+bwd vs clone
            Section(
                "size sweep, fwd in place", acts=SWEEP_ACTS, sizes=sizes_sweep, modes=["fwd"], variants=["inplace"]
            ),
            Section(
                "size sweep, fwd+bwd allocating",
                acts=SWEEP_ACTS,
                sizes=sizes_sweep,
                modes=["fwdbwd"],
                variants=["alloc"],
            ),
        ]
        if cores > 1 and device == "cpu":
            sections.append(
                Section(
                    "one thread",
                    sizes=[big],
                    modes=["fwd", "fwdbwd"],
                    variants=["alloc"],
                    providers=["fused", "eager"],
                    threads=[1],
                )
            )
        return sections
    if name == "quick":
        acts = ["relu", "gelu", "softsign", "elu", "mish"]
        return [
            Section("quick: five activations, 2^20", acts=acts, sizes=[1 << 20]),
            Section(
                "quick: bfloat16",
                acts=acts,
                dtypes=["bfloat16"],
                sizes=[1 << 20],
                modes=["fwd", "fwdbwd"],
                variants=["alloc"],
                providers=["fused", "eager"],
            ),
        ]
    raise ValueError(f"unknown plan {name!r}: full or quick")


def expand(sections: list[Section], device: str = "cpu") -> list[Case]:
    """The cases of all sections, each once (providers merged), in a stable order that groups
    cases by thread count, dtype and size."""
    merged: dict[tuple, Case] = {}
    for s in sections:
        for c in s.cases(device):
            old = merged.get(c.key)
            if old is not None:
                provs = tuple(p for p in PROVIDERS if p in old.providers or p in c.providers)
                c = Case(**{**c.as_dict(), "providers": provs})
            merged[c.key] = c
    order = {a: i for i, a in enumerate(ACTIVATIONS)}
    return sorted(
        merged.values(),
        key=lambda c: (
            c.device,
            -c.threads,
            c.dtype != "float32",
            c.dtype,
            c.size,
            order[c.act],
            MODES.index(c.mode),
            VARIANTS.index(c.variant),
        ),
    )
