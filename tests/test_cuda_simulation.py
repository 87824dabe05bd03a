"""The CUDA kernel's per-thread body (csrc/cuda/elementwise_thread.cuh) run on the CPU over a
simulated grid: every element written once with the right value, on the 128-bit packet path,
the scalar path (misaligned pointers), the tail, and grids smaller and larger than the work."""

from __future__ import annotations

import pytest
import torch
from conftest import BWD_TOL, CASE_IDS, CASES, FWD_TOL, assert_close, sample_input

import fused_act

sim = torch.ops.fused_act._simulate_cuda_elementwise
FORWARD, BACKWARD, DOUBLE_BACKWARD = 0, 1, 2
PACKET = {torch.float32: 4, torch.float64: 2, torch.float16: 8, torch.bfloat16: 8}


def aligned_view(n, dtype, offset=0):
    """n elements of a fresh buffer starting `offset` elements in (offset 0 is 16-byte aligned)."""
    buf = torch.empty(n + 16, dtype=dtype)
    assert buf.data_ptr() % 16 == 0
    return buf[offset : offset + n]


def run(kind, inputs, act, params, from_output, nthreads, out_offset=0):
    out = aligned_view(inputs[0].numel(), inputs[0].dtype, out_offset)
    out.fill_(float("nan"))
    vectorized = sim(out, inputs, act, params, kind, from_output, nthreads)
    return out, vectorized


@pytest.mark.parametrize("dtype", list(PACKET), ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_thread_body_matches_float64(case, dtype):
    """Forward, backward and double backward through the simulated GPU threads, in each dtype,
    against the same computation in float64 by the CPU kernels (which the other tests check
    against torch's float64 autograd, double backward included)."""
    name, params = case
    kernel, args = fused_act.ACTIVATIONS[name].kernel_args(params)
    from_output = fused_act.ops.saved_for(kernel, tuple(args)) != "input"
    n = 1000 + 3  # not a multiple of any packet width: a tail
    x = aligned_view(n, dtype)
    x.copy_(sample_input(name, params, dtype, "cpu", n=n))
    g = aligned_view(n, dtype)
    g.copy_(torch.rand(n) * 2 - 1)
    ops = torch.ops.fused_act
    x64, g64 = x.double(), g.double()
    y64 = ops.activation(x64, kernel, args)
    s = ops.activation(x, kernel, args) if from_output else x  # saved in the dtype, as in training
    s64 = s.double()
    dx64 = ops.activation_backward(g64, s64, kernel, args, from_output)
    d2_64 = ops.activation_double_backward(g64, g64, s64, kernel, args, from_output)
    for nthreads in (1, 7, 256, 4096):
        y, vec = run(FORWARD, [x], kernel, args, from_output, nthreads)
        assert vec
        assert_close(y, y64, FWD_TOL[dtype], f"{name} forward, {nthreads} threads")
        dx, _ = run(BACKWARD, [g, s], kernel, args, from_output, nthreads)
        assert_close(dx, dx64, BWD_TOL[dtype], f"{name} backward, {nthreads} threads")
        d2, _ = run(DOUBLE_BACKWARD, [g, g, s], kernel, args, from_output, nthreads)
        # second derivatives cancel more (1 - tanh^2 near saturation in gelu_tanh, as in torch's
        # float32 formula): ten times the backward's absolute tolerance
        atol, rtol = BWD_TOL[dtype]
        assert_close(d2, d2_64, (10 * atol, rtol), f"{name} double backward, {nthreads} threads")


@pytest.mark.parametrize("dtype", list(PACKET), ids=str)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 7, 8, 9, 15, 16, 17, 33, 1000, 4099])
@pytest.mark.parametrize("in_offset, out_offset", [(0, 0), (1, 0), (0, 1), (3, 3)])
def test_every_element_exactly_once(dtype, n, in_offset, out_offset):
    """identity copies, so any element missed (NaN left) or written from the wrong place shows.
    Input and output equally misaligned take the packet path with a scalar head; misaligned
    relative to each other, the scalar path."""
    x = aligned_view(n, dtype, in_offset)
    x.copy_(torch.arange(n, dtype=torch.float64) % 251)
    for nthreads in (1, 2, 5, 64, 10000):
        out, vec = run(FORWARD, [x], "identity", [], True, nthreads, out_offset)
        if n > 0:
            assert vec == (in_offset == out_offset)
        assert torch.equal(out, x), f"n={n} threads={nthreads} offsets={in_offset},{out_offset}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("n", [43, 4099])
@pytest.mark.parametrize("offset", [0, 1])
def test_each_element_has_one_owner_thread(dtype, n, offset):
    """Runs each simulated thread alone: the union of their writes covers every element exactly
    once. Two writers of one element would race on the GPU; a missed element stays NaN."""
    x = aligned_view(n, dtype, offset)
    x.copy_(torch.arange(n, dtype=torch.float64) % 97)
    for nthreads in (1, 3, 11, 64):
        writes = torch.zeros(n, dtype=torch.int64)
        for tid in range(nthreads):
            out = aligned_view(n, dtype)
            out.fill_(float("nan"))
            sim(out, [x], "identity", [], FORWARD, True, nthreads, tid)
            written = ~out.isnan()
            assert torch.equal(out[written], x[written])
            writes += written.long()
        assert (writes == 1).all(), f"nthreads={nthreads}: counts {writes.unique().tolist()}"
