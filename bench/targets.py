"""The issue's targets, checked against a run's rows, with the reason for each miss.

Read at float32, 2^24 elements, forward+backward, all cores (issues #2 and #6):
  limit    fused within 1.5x of the memory limit, like for like (alloc vs clone-based limit,
           in-place vs copy_-based limit)
  compile  fused at least as fast as torch.compile
  eager    fused >= 2.5x faster than eager for the composite activations (>= 2x for
           rescaled_sigmoid in #2), and never slower than eager for any activation
  in place (#10) fused in place within 1.3x of its limit, or, where compute bound, >= 1.2x
           faster than eager in place (than eager allocating where eager has no in-place form)
A reason is inferred from the same run: a kernel whose ratio to the memory limit falls when it
runs on more threads is compute bound (the arithmetic gains a core's worth, memory bandwidth less);
one whose ratio stays put is memory bound, and is shown beside the cheapest kernel of the run (the
floor of this machine's streaming loops); one that meets the limit in place but not when allocating
is allocation bound; an eager speedup the memory limit itself forbids (eager already within the
target of the limit) is unreachable by any kernel.
"""

from __future__ import annotations

from fused_act.registry import ACTIVATIONS

from .cases import COMPOSITE_ACTS

LIMIT_MAX = 1.5
INPLACE_MAX = 1.3  # issue #10
INPLACE_COMPUTE_EAGER_MIN = 1.2  # issue #10: what a compute-bound activation must beat eager by in place
# Compute bound: the ratio to the limit on one thread over that on all threads at least this. The
# limit itself (copy_ / clone) runs 1.5x-1.8x faster on two cores than on one on the 2-core machines
# measured, and so does every activation at 2^24 (bench/results/*/results.json: the ratio to the
# limit moves by 0.83x-1.08x between one thread and two), so plain speed-up with threads (the
# criterion before, at 1.4x) called memory-bound kernels compute bound.
COMPUTE_SCALING = 1.15
EAGER_MIN = {**{a: 2.5 for a in COMPOSITE_ACTS}, "rescaled_sigmoid": 2.0}
# issue #6 asks 2.5x for rescaled_sigmoid too; #2 asks 2x. Both are reported.
EAGER_MIN_ISSUE6 = {a: 2.5 for a in COMPOSITE_ACTS}
SIZE = 1 << 24
# "at least as fast" (compile, and never slower than eager) counts a ratio within 5% as a tie:
# the interquartile ranges of 2^24 medians on this machine are 5-10% wide.
TIE = 0.95


class Index:
    """Rows by (device, threads, dtype, size, act, mode, variant, provider)."""

    def __init__(self, rows: list[dict]):
        self.rows = {
            (r["device"], r["threads"], r["dtype"], r["size"], r["act"], r["mode"], r["variant"], r["provider"]): r
            for r in rows
        }

    def get(self, device, threads, dtype, size, act, mode, variant, provider):
        return self.rows.get((device, threads, dtype, size, act, mode, variant, provider))

    def med(self, *key):
        r = self.get(*key)
        return None if r is None else r["median_s"]


def saved_for(act: str, spec) -> str:
    """What the kernel keeps for backward at the registry's default parameters."""
    from fused_act.ops import saved_for as kept

    kernel, params = spec.kernel_args({})
    return kept(kernel, tuple(params))


def check(rows: list[dict], device: str, threads: int, one_thread: int | None = 1) -> list[dict]:
    """One dict per activation at the target point: the ratios, each target's verdict and the
    reasons for the misses."""
    ix = Index(rows)
    present = {r["act"] for r in rows}
    acts = [a for a in ACTIVATIONS if a in present] + sorted(present - set(ACTIVATIONS))
    out = []
    # The cheapest streaming loop of the run: what "near the limit" means on this machine. (Ratios
    # far below 1 are identity's, which returns its input and moves no bytes.)
    floor_ratio, floor_act = min(
        (
            (r["ratio_limit"], a)
            for a in acts
            if (r := ix.get(device, threads, "float32", SIZE, a, "fwdbwd", "alloc", "fused"))
            and (r["ratio_limit"] or 0) > 0.5
        ),
        default=(float("nan"), "none"),
    )
    for act in acts:
        k = (device, threads, "float32", SIZE, act, "fwdbwd")
        fa = ix.get(*k, "alloc", "fused")
        if fa is None:
            continue
        fi = ix.get(*k, "inplace", "fused")
        ei = ix.get(*k, "inplace", "eager")
        ea = ix.get(*k, "alloc", "eager")
        ca = ix.get(*k, "alloc", "compile")
        d = {
            "act": act,
            "fused_ms": fa["median_s"] * 1e3,
            "limit_alloc": fa["ratio_limit"],
            "limit_inplace": fi["ratio_limit"] if fi else None,
            "eager_speedup": ea["median_s"] / fa["median_s"] if ea else None,
            "eager_speedup_inplace": ei["median_s"] / fi["median_s"] if ei and fi else None,
            "compile_speedup": ca["median_s"] / fa["median_s"] if ca else None,
            "eager_limit": ea["ratio_limit"] if ea else None,
            "miss": [],
            "met": [],
            # the same ratios from each provider's fastest call (robust to other processes)
            "min_limit_alloc": fa["min_ratio_limit"],
            "min_limit_inplace": fi["min_ratio_limit"] if fi else None,
            "min_eager_speedup": ea["min_ratio_fused"] if ea else None,
            "min_compile_speedup": ca["min_ratio_fused"] if ca else None,
            "load1": fa.get("load1"),
        }
        scaling = limit_one = None
        if one_thread is not None and one_thread != threads:
            f1 = ix.get(device, one_thread, "float32", SIZE, act, "fwdbwd", "alloc", "fused")
            if f1 is not None and f1["ratio_limit"]:
                limit_one = f1["ratio_limit"]
                scaling = limit_one / fa["ratio_limit"]
        d["limit_one_thread"] = limit_one
        scales = scaling is not None and scaling >= COMPUTE_SCALING
        if scaling is None:
            compute = "no one-thread row to tell compute from memory"
        elif scales:
            compute = (
                f"compute bound: {limit_one:.2f}x the limit on 1 thread, {fa['ratio_limit']:.2f}x on {threads} "
                "(the arithmetic gains from threads more than memory does)"
            )
        else:
            compute = (
                f"memory bound: {fa['ratio_limit']:.2f}x the limit on {threads} threads and {limit_one:.2f}x on 1 "
                f"(it gains from threads what memory does); the cheapest kernel of this run, {floor_act}, "
                f"is at {floor_ratio:.2f}x"
            )
        # limit
        worst = max(x for x in (d["limit_alloc"], d["limit_inplace"]) if x is not None)
        if worst <= LIMIT_MAX:
            d["met"].append("limit")
        else:
            if d["limit_alloc"] > LIMIT_MAX and d["limit_inplace"] is not None and d["limit_inplace"] <= LIMIT_MAX:
                why = (
                    f"allocation bound: {d['limit_alloc']:.2f}x the clone limit allocating but "
                    f"{d['limit_inplace']:.2f}x in place"
                )
            elif d["limit_alloc"] <= LIMIT_MAX and act in ACTIVATIONS and saved_for(act, ACTIVATIONS[act]) == "input":
                why = (
                    f"backward needs x: in place, a clone of x and then the in-place pass (7N "
                    f"against the limit's 6N, cases.traffic); allocating, {d['limit_alloc']:.2f}x the limit"
                )
            else:
                why = compute
            d["miss"].append(f"limit ({worst:.2f}x > {LIMIT_MAX}x): {why}")
        # in place (#10)
        if d["limit_inplace"] is not None:
            # where torch's module takes no inplace= (nn.Tanh, nn.Softplus, ...: no eager in-place
            # row, bench/providers.py), what eager offers is the allocating call
            beat, vs = d["eager_speedup_inplace"], "eager in place"
            if beat is None and ea is not None:
                beat, vs = ea["median_s"] / fi["median_s"], "eager allocating"
            if d["limit_inplace"] <= INPLACE_MAX:
                d["met"].append(f"in place <= {INPLACE_MAX:g}x the limit")
            elif scales and beat is not None and beat >= INPLACE_COMPUTE_EAGER_MIN:
                d["met"].append(f"in place: compute bound, {beat:.2f}x {vs}")
            else:
                d["miss"].append(
                    f"in place ({d['limit_inplace']:.2f}x > {INPLACE_MAX:g}x the limit"
                    + (f", {beat:.2f}x {vs}" if beat is not None else "")
                    + f"): {compute if scaling is not None else 'memory traffic above the limit'}"
                )
        # compile
        if d["compile_speedup"] is not None:
            if d["compile_speedup"] >= TIE:
                d["met"].append("compile" if d["compile_speedup"] >= 1.0 else "compile (tie within 5%)")
            else:
                cl = ca["ratio_limit"]
                why = compute + f"; inductor's code is {1 / d['compile_speedup']:.2f}x faster ({cl:.2f}x the limit)"
                d["miss"].append(f"compile ({d['compile_speedup']:.3f}x): {why}")
        # eager
        if d["eager_speedup"] is not None:
            need = EAGER_MIN.get(act, 1.0)
            need6 = EAGER_MIN_ISSUE6.get(act, need)
            for want, label in sorted({(need, "eager"), (need6, "eager (#6)")}):
                if label == "eager (#6)" and need6 == need:
                    continue
                if d["eager_speedup"] >= want or (want <= 1.0 and d["eager_speedup"] >= TIE):
                    d["met"].append(f"{label} >= {want:g}x" + ("" if d["eager_speedup"] >= want else " (tie)"))
                    continue
                if want <= 1.0 and d["limit_alloc"] <= LIMIT_MAX:
                    why = (
                        f"both near the memory limit (fused {d['limit_alloc']:.2f}x, eager "
                        f"{d['eager_limit']:.2f}x): a memory-traffic difference, not compute"
                    )
                elif want > 1.0 and d["eager_limit"] is not None and d["eager_limit"] < want:
                    why = (
                        f"unreachable: eager is already {d['eager_limit']:.2f}x the memory limit, so a "
                        f"kernel at the limit would be {d['eager_limit']:.2f}x faster at most"
                    )
                elif d["eager_limit"] is not None and scaling is not None and not scales:
                    need_limit = d["eager_limit"] / want
                    why = f"{want:g}x needs {need_limit:.2f}x the limit (eager: {d['eager_limit']:.2f}x); {compute}"
                else:
                    why = compute
                d["miss"].append(f"{label} ({d['eager_speedup']:.3f}x < {want:g}x): {why}")
        out.append(d)
    return out
