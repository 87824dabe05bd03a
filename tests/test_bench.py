"""The benchmark suite's machinery (byte accounting, limits, plans cover the registry, a tiny
run renders a report) and the performance regression guard.

The guard is marked ``perf`` and runs only when selected: ``pytest -m perf tests/test_bench.py``
(or ``python -m bench guard``). It takes a few seconds; see bench/guard.py for its margin.
"""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest
import torch

from bench import cases, report, runner, streaming, targets
from bench.cases import Case, Section, expand, limit_seconds, plan, traffic, valid
from bench.memory import saved_bytes
from bench.providers import Tensors, build
from bench.timing import Runner, Stats, balanced_orders, measure
from fused_act import _C
from fused_act.registry import ACTIVATIONS

N = 1 << 10


def _case(act="elu", mode="fwdbwd", variant="alloc", dtype="float32", n=N):
    return Case(act, dtype, n, mode, variant, 1)


# ------------------------------------------------------------------ bytes and limits


@pytest.mark.parametrize(
    "mode,variant,nbytes,fresh",
    [
        ("fwd", "alloc", 2, 1),
        ("fwd", "inplace", 2, 0),
        ("bwd", "alloc", 3, 1),
        ("fwdbwd", "alloc", 4, 2),
        ("fwdbwd", "inplace", 4, 1),
    ],
)
def test_traffic(mode, variant, nbytes, fresh):
    assert traffic(_case(mode=mode, variant=variant)) == (nbytes * N * 4, fresh)
    assert traffic(_case(mode=mode, variant=variant, dtype="bfloat16")) == (nbytes * N * 2, fresh)


def test_in_place_keeps_a_copy_of_x_when_backward_needs_it():
    # gelu's backward reads x, which its in-place forward overwrites: the kept copy is traffic
    assert traffic(_case("gelu", variant="inplace")) == (6 * N * 4, 2)
    assert traffic(_case("gelu", variant="alloc")) == (4 * N * 4, 2)
    assert traffic(_case("gelu", mode="fwd", variant="inplace")) == (2 * N * 4, 0)  # no graph, no copy
    assert limit_seconds(_case("gelu", variant="inplace"), 1.0, 3.0) == 2 * 3.0 + 1.0


def test_identity_backward_is_a_pass_through():
    assert traffic(_case("identity", "fwdbwd")) == (2 * N * 4, 1)
    assert not valid(_case("identity", "bwd"))
    assert not valid(_case("elu", "bwd", "inplace"))  # no preallocated backward op


def test_limit_charges_one_clone_per_fresh_output():
    copy, clone = 1.0, 3.0
    assert limit_seconds(_case(mode="fwd"), copy, clone) == clone
    assert limit_seconds(_case(mode="fwd", variant="inplace"), copy, clone) == copy
    assert limit_seconds(_case(mode="bwd"), copy, clone) == clone + 0.5 * copy
    assert limit_seconds(_case(mode="fwdbwd"), copy, clone) == 2 * clone
    assert limit_seconds(_case(mode="fwdbwd", variant="inplace"), copy, clone) == clone + copy


# ------------------------------------------------------------------ plans cover the registry


@pytest.mark.parametrize("name", ["full", "quick"])
def test_plans_are_valid(name):
    cs = expand(plan(name))
    assert cs and len({c.key for c in cs}) == len(cs)
    assert all(valid(c) for c in cs)


def test_every_activation_gets_every_mode_in_the_full_plan():
    cs = expand(plan("full"))
    for act in ACTIVATIONS:
        got = {(c.mode, c.variant) for c in cs if c.act == act and c.size == 1 << 24 and c.dtype == "float32"}
        want = {(m, v) for m in cases.MODES for v in cases.VARIANTS if valid(_case(act, m, v))}
        assert got >= want, act
        assert any(c.act == act and c.dtype == "bfloat16" for c in cs), act


def test_shared_cases_merge_providers():
    s1 = Section("a", acts=["relu"], modes=["fwd"], variants=["alloc"], providers=["fused"])
    s2 = Section("b", acts=["relu"], modes=["fwd"], variants=["alloc"], providers=["compile"])
    (c,) = expand([s1, s2])
    assert c.providers == ("fused", "compile")


# ------------------------------------------------------------------ providers compute the activation


@pytest.mark.parametrize("act", list(ACTIVATIONS))
def test_fused_and_eager_runners_agree(act):
    for mode, variant in [("fwd", "alloc"), ("fwd", "inplace"), ("bwd", "alloc"), ("fwdbwd", "alloc")]:
        c = _case(act, mode, variant)
        if not valid(c):
            continue
        t = Tensors(c)
        got = {}
        for p in ("fused", "eager"):
            r = build(p, c, t).runner
            if r.setup:
                r.setup()
            got[p] = r.fn().detach().clone()
        torch.testing.assert_close(got["fused"], got["eager"], atol=1e-4, rtol=1e-4, msg=f"{act} {mode}/{variant}")


def test_inplace_runner_refills_its_buffer():
    # squared_relu applied repeatedly in place would overflow; the refill keeps every call on x
    c = _case("squared_relu", "fwd", "inplace")
    t = Tensors(c)
    r = build("fused", c, t).runner
    for _ in range(20):
        r.setup()
        r.fn()
    torch.testing.assert_close(t.buf, torch.relu(t.x) ** 2)


def test_saved_bytes_counts_storages_once():
    x = torch.randn(N, requires_grad=True)
    assert saved_bytes(lambda: torch.sigmoid(x)) == N * 4  # saves its output
    assert saved_bytes(lambda: x * x) == N * 4  # x saved twice, one storage
    assert saved_bytes(lambda: x.clone()) == 0


# ------------------------------------------------------------------ timing and the report


def test_measure_interleaves_and_summarizes():
    calls = []
    runners = {"a": Runner(lambda: calls.append("a")), "b": Runner(lambda: calls.append("b"))}
    st = measure(runners, rounds=3, warmup=1, min_round_s=0)  # rounded up to two cycles of 2
    assert set(st) == {"a", "b"} and all(s.n == 4 for s in st.values())
    assert calls[-8:] == ["a", "b", "b", "a", "a", "b", "b", "a"]
    s = Stats.of([1.0, 2.0, 3.0, 4.0, 5.0])
    assert (s.median, s.q25, s.q75) == (3.0, 2.0, 4.0)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_balanced_orders_give_every_runner_each_position_and_predecessor_equally(n):
    # A rotating order (the old one) passes the position count but not the predecessor count:
    # with three runners b always ran after a.
    orders = balanced_orders(n)
    assert all(sorted(o) == list(range(n)) for o in orders)
    positions = Counter((o[j], j) for o in orders for j in range(n))
    predecessors = Counter((o[j - 1], o[j]) for o in orders for j in range(1, n))
    assert len(positions) == n * n and len(set(positions.values())) == 1
    assert len(predecessors) == n * (n - 1) and len(set(predecessors.values())) <= 1


def test_measure_goes_through_the_balanced_orders():
    calls = []
    runners = {k: Runner(lambda k=k: calls.append(k)) for k in "abc"}
    measure(runners, rounds=6, warmup=1, min_round_s=0)
    assert [calls[-18:][i : i + 3] for i in range(0, 18, 3)] == [["abc"[j] for j in o] for o in balanced_orders(3)]


def test_streaming_bench_writes_its_table_and_restores_the_policy(tmp_path):
    before = _C.cpu_streaming()
    out = tmp_path / "streaming.md"
    streaming.main(["--acts", "relu", "--log2n", "10", "--modes", "fwd", "fwdbwd", "--rounds", "1", "--out", str(out)])
    rows = [line for line in out.read_text().splitlines() if line.startswith("| fwd")]
    assert [r.split(" | ")[:3] for r in rows] == [["| fwd", "2^10", "relu"], ["| fwdbwd", "2^10", "relu"]]
    assert _C.cpu_streaming() == before


def test_tiny_run_writes_csv_json_and_report(tmp_path, monkeypatch):
    # the target point is 2^24; a tiny run at 2^10 exercises the same tables
    monkeypatch.setattr("bench.targets.SIZE", N)
    monkeypatch.setattr("bench.report.SIZE", N)
    monkeypatch.setattr("bench.plots.SIZE", N)
    sec = [
        Section(
            "tiny",
            acts=["relu", "softsign"],
            sizes=[N, 2 * N, 4 * N, 8 * N],
            modes=["fwd", "fwdbwd"],
            providers=["fused", "eager"],
            threads=[1],
        )
    ]
    meta, rows = runner.run(expand(sec), tmp_path, "python -m bench (test)", rounds=2, warmup=1)
    assert {r["provider"] for r in rows} == {"fused", "eager", "copy", "clone"}
    with open(tmp_path / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert json.loads((tmp_path / "results.json").read_text())["machine"]["cpu_isa"]
    path = report.render(meta, rows, tmp_path)
    text = path.read_text()
    assert "## Targets" in text and "softsign" in text and "python -m bench (test)" in text
    for png in ("time_vs_size.png", "gbs_vs_size.png", "speedup.png", "memory.png"):
        assert (tmp_path / png).stat().st_size > 0 and f"]({png})" in text
    assert "of peak" not in text
    # with a GPU's peak bandwidth in the machine description, the fraction of it per fused row
    gpu = tmp_path / "gpu"
    gpu.mkdir()
    text = report.render({**meta, "gpu_peak_bandwidth_gbs": 1.0}, rows, gpu).read_text()
    fused = next(r for r in rows if r["provider"] == "fused" and r["size"] == N and r["act"] == "relu")
    assert "of peak" in text and f"{fused['gbs']:.0%}" in text


def _row(act, variant, provider, median, ratio_limit=None, threads=2):
    return {
        "device": "cpu", "threads": threads, "dtype": "float32", "size": targets.SIZE, "act": act,
        "mode": "fwdbwd", "variant": variant, "provider": provider, "median_s": median,
        "ratio_limit": ratio_limit, "min_ratio_limit": ratio_limit, "min_ratio_fused": None, "load1": None,
    }  # fmt: skip


@pytest.mark.parametrize(
    "inplace_limit,eager_inplace,one_thread_limit,verdict",
    [
        (1.25, 1.0, 1.1, "met"),  # within 1.3x of the limit
        (1.6, 1.5, 1.5, "met"),  # compute bound (1.5x the limit on 1 thread, 1.1x on 2) and 1.5x eager
        (1.6, 1.1, 1.5, "miss"),  # compute bound but only 1.1x eager
        (1.6, 1.5, 1.1, "miss"),  # far from the limit without being compute bound
    ],
)
def test_in_place_target_of_issue_10(inplace_limit, eager_inplace, one_thread_limit, verdict):
    rows = [
        _row("elu", "alloc", "fused", 1.0, 1.1),
        _row("elu", "alloc", "eager", 1.2),
        _row("elu", "inplace", "fused", 1.0, inplace_limit),
        _row("elu", "inplace", "eager", eager_inplace),
        _row("elu", "alloc", "fused", 1.6, one_thread_limit, threads=1),
    ]
    (c,) = targets.check(rows, "cpu", 2)
    in_place = [m for m in c["met" if verdict == "met" else "miss"] if m.startswith("in place")]
    assert len(in_place) == 1, c


def test_in_place_target_without_an_eager_in_place_form():
    # compute bound, and no eager in-place row: measured against eager allocating (1.5x here)
    rows = [
        _row("tanh", "alloc", "fused", 1.0, 1.1),
        _row("tanh", "alloc", "eager", 1.5),
        _row("tanh", "inplace", "fused", 1.0, 1.6),
        _row("tanh", "alloc", "fused", 1.9, 1.5, threads=1),
    ]
    (c,) = targets.check(rows, "cpu", 2)
    assert "in place: compute bound, 1.50x eager allocating" in c["met"], c


def test_a_kernel_that_speeds_up_only_as_memory_does_is_memory_bound():
    """1.6x faster on two threads than on one, but so is the limit (the ratio stays 1.2x): the
    eager miss is explained against the limit and the run's cheapest kernel, not as compute."""
    rows = [
        _row("relu", "alloc", "fused", 0.9, 1.08),
        _row("rescaled_sigmoid", "alloc", "fused", 1.0, 1.2),
        _row("rescaled_sigmoid", "alloc", "eager", 2.4, 2.88),
        _row("rescaled_sigmoid", "alloc", "fused", 1.6, 1.21, threads=1),
    ]
    c = {d["act"]: d for d in targets.check(rows, "cpu", 2)}["rescaled_sigmoid"]
    (miss,) = [m for m in c["miss"] if m.startswith("eager (#6)")]
    assert "2.5x needs 1.15x the limit (eager: 2.88x); memory bound: 1.20x" in miss, miss
    assert "cheapest kernel of this run, relu, is at 1.08x" in miss and "compute bound" not in miss


@pytest.mark.parametrize(
    "fused,verdict,why",
    [
        # eager: fwd 20 us, fwdbwd 100 us; fused fwd 10 us: forward-only bound 100 / 90 = 1.11x
        ((10.0, 80.0), "met", None),  # 1.25x
        ((10.0, 88.0), "missed", "forward alone cannot reach it"),  # 1.14x, bound 1.11x < 1.2x
    ],
)
def test_call_targets_of_issue_10(fused, verdict, why):
    from bench import step_targets

    medians = {("fwd", "65536", "sigmoid"): (fused[0], 20.0), ("fwdbwd", "65536", "sigmoid"): (fused[1], 100.0)}
    (c,) = step_targets.check_calls(medians)
    assert (c["target"], c["verdict"]) == (1.2, verdict)
    assert c["bound"] == pytest.approx(100 / 90)
    assert why is None or why in c["why"]
    # relu's target is 1.0x: 0.96x is a tie, 0.9x a miss
    for eager, v in ((96.0, "tie"), (90.0, "missed")):
        (c,) = step_targets.check_calls({("fwdbwd", "65536", "relu"): (100.0, eager)})
        assert (c["target"], c["verdict"]) == (1.0, v)


def test_model_targets_of_issue_10():
    from bench import step_targets

    def r(mode, orig, conv, **extra):
        return {
            "model": "m", "mode": mode,
            "original": {"median_ms": orig, "q1_ms": orig - 1, "q3_ms": orig + 1, **extra},
            "converted": {"median_ms": conv, "q1_ms": conv - 1, "q3_ms": conv + 1, **extra},
        }  # fmt: skip

    eager, comp = step_targets.check_models([r("eager", 10.0, 9.0), r("compile", 9.0, 12.0, inductor_kernels=5)])
    assert eager["verdict"] == "met" and comp["verdict"] == "missed"
    assert "inductor kernels 5" in comp["why"] and "disjoint" in comp["why"]
    assert "ATen's own kernels" not in comp["why"]
    # bench.op_boundary's run of the same model: original 9 ms, ATen's kernels behind a custom op 12, ours 10
    ms = lambda v: {"median_ms": v}  # noqa: E731
    row = {"model": "m", "original": ms(9.0), "aten_op": ms(12.0), "converted": ms(10.0)}
    boundary = step_targets.boundary_ratios([row])
    assert boundary == {"m": (0.75, 0.9)}
    (comp,) = step_targets.check_models([r("compile", 9.0, 12.0, inductor_kernels=5)], boundary)
    assert "custom op run this step at 0.75x, fused_act's at 0.90x" in comp["why"]
    assert "win part of it back" in comp["why"]
    (comp,) = step_targets.check_models(
        [r("compile", 9.0, 12.0)], step_targets.boundary_ratios([{**row, "aten_op": ms(9.5)}])
    )
    assert "fused_act's kernels cost this step more than ATen's" in comp["why"]


def test_call_cost_writes_targets_that_the_report_reads(tmp_path):
    from bench import call_cost

    out = tmp_path / "call_cost.md"
    args = ["--acts", "sigmoid", "--sizes", "64", "65536", "--shapes", "8x512x2x2", "--rounds", "1"]
    call_cost.main([*args, "--out", str(out)])
    text = out.read_text()
    assert "| fwdbwd | 8x512x2x2 | sigmoid |" in text and "Issue #10's targets" in text
    medians = call_cost.load_medians(tmp_path / "call_cost.json")
    assert {k for k in medians if k[0] == "fwdbwd"} == {("fwdbwd", s, "sigmoid") for s in ("64", "65536", "8x512x2x2")}
    assert "targets met" in report._small_and_models(tmp_path)


def test_layouts_times_every_direction(tmp_path):
    from bench import layouts

    out = tmp_path / "layouts.md"
    layouts.main(["--acts", "hardswish", "relu", "--shapes", "2x16x4x5", "--rounds", "1", "--out", str(out)])
    rows = [line.split(" | ")[:3] for line in out.read_text().splitlines() if line.startswith("| 2x16x4x5")]
    assert sorted(map(tuple, rows)) == sorted(
        ("| 2x16x4x5", act, d) for act in ("hardswish", "relu") for d in layouts.DIRECTIONS
    )


# ------------------------------------------------------------------ regression guard


@pytest.mark.perf
def test_fused_not_slower_than_eager(request):
    if "perf" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("performance guard: run with -m perf")
    from bench.guard import MARGIN, run_guard

    verdicts = run_guard()
    bad = [
        f"{v.act} {v.mode}: fused/eager {v.ratio:.2f} [{v.ratio_q25:.2f}, {v.ratio_q75:.2f}]"
        for v in verdicts
        if v.failed(MARGIN)
    ]
    assert not bad, f"fused_act slower than eager by more than {MARGIN}x: " + "; ".join(bad)


def test_step_profile_table_merges_compiled_graphs_and_ranks_by_difference():
    from collections import Counter

    from bench.step_profile import INDUCTOR, op_name, table

    orig = Counter({op_name("## Call CompiledFxGraph abc"): 4000, "aten::mm": 2000, "aten::add_": 1000})
    conv = Counter({op_name("## Call CompiledFxGraph xyz"): 6000, "aten::mm": 2100, "fused_act::activation": 1000})
    assert op_name("Torch-Compiled Region: 0/1") == op_name("Torch-Compiled Region: 0/0")
    rows = table(orig, conv, steps=2, top=3)
    # ranked by |difference| per step: inductor +1.0 ms, then the two +-0.5 ms rows
    assert rows[2] == f"| {INDUCTOR} | 2.00 | 3.00 | +1.00 |"
    assert {r.split(" | ")[0] for r in rows[3:5]} == {"| aten::add_", "| fused_act::activation"}
    assert rows[-1] == "| **all ops** | 3.50 | 4.55 | +1.05 |"


@pytest.mark.parametrize("act", ["ReLU", "Sigmoid", "GELU", "GELU(tanh)", "Hardswish", "Hardsigmoid"])
def test_op_boundary_puts_torchs_activation_behind_a_custom_op(act):
    """bench.op_boundary's baseline: the original model's activation behind an opaque op, whose
    values and gradient must be torch's (float64) and whose fake kernels must promise the layouts
    the real ones return, with the gradient and the saved tensor in different layouts too."""
    from torch import nn

    from bench.op_boundary import aten_activation, aten_activation_backward, behind_boundary

    torch_module = nn.GELU(approximate="tanh") if act == "GELU(tanh)" else getattr(nn, act)()
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(torch_module))
    assert behind_boundary(model) == 1
    assert model[1][0].act == act
    subclass = type("Mine", (type(torch_module),), {})  # its forward may differ: left alone
    assert behind_boundary(nn.Sequential(subclass())) == 0
    x = (torch.randn(2, 3, 5, 5, dtype=torch.float64) * 4).requires_grad_()
    model = model.double()
    ref = nn.Sequential(model[0], torch_module)
    g = torch.randn(2, 4, 5, 5, dtype=torch.float64)
    y, (dx,) = model(x), torch.autograd.grad(model(x), x, g)
    y_ref, (dx_ref,) = ref(x), torch.autograd.grad(ref(x), x, g)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=0)
    torch.testing.assert_close(dx, dx_ref)
    cl = torch.randn(2, 4, 5, 5).to(memory_format=torch.channels_last)
    nchw = torch.randn(2, 4, 5, 5)
    torch.library.opcheck(aten_activation, (cl, act))
    strided = torch.randn(2, 4, 5, 10)[..., ::2]
    for grad, saved in ((nchw, cl), (cl, nchw), (strided, cl), (cl, strided)):
        torch.library.opcheck(aten_activation_backward, (grad, saved, act))


def test_sigmoid_forms_times_every_form(capsys):
    from bench import sigmoid_forms

    sigmoid_forms.main(["--n", "64", "--reps", "2", "--rounds", "3"])
    rows = [line.split("|")[1:3] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert sorted(name.strip() for name, _ in rows) == sorted(
        [
            "sigmoid (the functor's)",
            "division form",
            "reflection form",
            "exp alone",
            "exp(-x) + 1 (no division)",
            "division alone",
            "eleven chained FMAs",
            "tanh (the functor's)",
        ]
    )
    assert all(float(ns) > 0 for _, ns in rows)


@pytest.mark.parametrize("function", ["erf", "tanh", "log1p"])
def test_fit_rational_reproduces_the_coefficients_in_math_h(function):
    """The fit and csrc/activations/math.h agree: every float32 coefficient it prints for P and Q
    (but Q's leading 1, and P's for log1p, whose SIMD form adds u itself) is a constant of math.h,
    and an odd fit evaluates to exactly 1 at its clamp."""
    import re
    from pathlib import Path

    import numpy as np

    from bench import fit_rational

    f, degrees, c, odd = fit_rational.FUNCTIONS[function]
    p, q = fit_rational.fit(f, *degrees, c, odd)
    p32, q32 = p.astype(np.float32), q.astype(np.float32)
    source = (Path(__file__).resolve().parents[1] / "csrc" / "activations" / "math.h").read_text()
    constants = {np.float32(m) for m in re.findall(r"(-?\d[\d.]*(?:e[-+]?\d+)?)f\b", source)}
    assert {np.float32(v) for v in [*(p32 if odd else p32[1:]), *q32[1:]]} <= constants
    if odd:
        assert fit_rational.float32_eval(p32.astype(np.float64), q32.astype(np.float64), c, [c])[0] == 1.0
    else:
        assert p32[0] == 1.0  # u + u^2 P'(u) is u P(u) only then
    ulp, _ = fit_rational.float32_max_ulp(f, p32.astype(np.float64), q32.astype(np.float64), c, odd)
    # 4M-point grid: tanh 5.02, erf 5.51, log1p 1.21 (every float32: docs/math.md)
    assert ulp < (6 if odd else 1.3), ulp


def test_results_name_the_isa_limits_they_ran_under(monkeypatch):
    """A result measured with ISA-limiting variables says so (eager's tanh and gelu ignore
    ATEN_CPU_CAPABILITY: fused_act/machine.py), and one measured without says nothing more."""
    from fused_act import machine

    for name in machine.ISA_LIMITS:
        monkeypatch.delenv(name, raising=False)
    d = machine.describe()
    assert d["isa_limits"] == ""
    assert machine.isa_text(d) == f"fused_act ISA {d['cpu_isa']}"
    assert "isa_limits" not in report._machine(d)
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    d = machine.describe()
    assert d["isa_limits"] == "MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2"
    assert machine.isa_text(d) == f"fused_act ISA {d['cpu_isa']} (MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2)"
    assert "| isa_limits | MKL_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 |" in report._machine(d)
