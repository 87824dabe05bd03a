"""Every op but the mask ones is registered with torch.Tag.flexible_layout (csrc/ops/library.cpp),
so torch.compile may hand it inputs in layouts eager never produced (channels-last where the
model is NCHW, permuted, strided, expanded views), in any mix. That is only sound if, for every
such input, (1) the kernel reads each input through its own strides: the values equal the op's
on contiguous copies, checked against float64 torch elsewhere, and (2) the outputs get the
strides the fake kernel (fused_act/ops/) promised, which inductor's generated code indexes with
(it checks sizes and the strides of dimensions longer than 1). The mask ops keep exact strides
(test_every_flexible_op_is_covered): their mask follows the forward's memory order."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from conftest import ISAS, run_under_isa
from torch._subclasses.fake_tensor import FakeTensorMode

ops = torch.ops.fused_act

SHAPE = (2, 6, 3, 5)


def laid_out(shape, layout: str, seed: int) -> torch.Tensor:
    """A float64 tensor of `shape` in one of the layouts inductor may choose."""
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = shape
    if layout == "contiguous":
        return torch.randn(shape, generator=g, dtype=torch.float64)
    if layout == "channels_last":
        return torch.randn(shape, generator=g, dtype=torch.float64).to(memory_format=torch.channels_last)
    if layout == "permuted":  # dense, neither contiguous nor channels-last
        return torch.randn(h, n, w, c, generator=g, dtype=torch.float64).permute(1, 3, 0, 2)
    if layout == "strided":  # not dense
        return torch.randn(n, c, h, 2 * w, generator=g, dtype=torch.float64)[..., ::2]
    if layout == "expanded":  # stride 0
        return torch.randn(n, c, h, 1, generator=g, dtype=torch.float64).expand(shape)
    if layout == "wide_unit_dims":  # contiguous, but the size-1 dimensions' strides as inductor sets them
        t = torch.randn(shape, generator=g, dtype=torch.float64)
        big = n * c * h * w
        return t.as_strided(shape, [big if d == 1 else st for d, st in zip(shape, t.stride(), strict=True)])
    raise ValueError(layout)


LAYOUTS = ["contiguous", "channels_last", "permuted", "strided", "expanded"]
PAIRS = list(itertools.product(LAYOUTS, repeat=2))


def channel_vector(channels: int, seed: int) -> torch.Tensor:
    return torch.rand(channels, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + 0.5


# name -> (op, arguments for the layouts (a, b)): the tensors in layout a or b, the rest fixed.
def calls(a: str, b: str, shape=SHAPE):
    x, y, z = laid_out(shape, a, 0), laid_out(shape, b, 1), laid_out(shape, a, 2)
    s = torch.sigmoid(laid_out(shape, b, 3))  # a sigmoid output, for the output-form backward
    halves = laid_out((shape[0], shape[1] // 2, *shape[2:]), a, 7)  # glu's input gradient
    bias = channel_vector(shape[1], 4)
    mean, invstd = channel_vector(shape[1], 5) - 1.0, channel_vector(shape[1], 6)
    return {
        "activation": (ops.activation, (x, "gelu", [])),
        "activation_backward": (ops.activation_backward, (x, y, "gelu", [], False)),
        "activation_backward (from output)": (ops.activation_backward, (x, s, "sigmoid", [], True)),
        "activation_double_backward": (ops.activation_double_backward, (x, y, z, "gelu", [], False)),
        "bias_act": (ops.bias_act, (x, bias, 1, "silu", [])),
        "bias_act_backward": (ops.bias_act_backward, (x, y, bias, 1, "silu", [], False)),
        "glu": (ops.glu, (x, 1, True, "gelu", [])),
        "glu_backward": (ops.glu_backward, (halves, y, 1, True, "gelu", [])),
        "gated": (ops.gated, (x, y, "silu", [])),
        "gated_backward": (ops.gated_backward, (x, y, z, "silu", [])),
        "batch_norm_act": (
            ops.batch_norm_act,
            (
                x,
                bias,
                bias - 1.0,
                torch.zeros(shape[1], dtype=torch.float64),
                torch.ones(shape[1], dtype=torch.float64),
                True,
                0.1,
                1e-5,
                "hardswish",
                [],
            ),
        ),
        "batch_norm_act_backward": (
            ops.batch_norm_act_backward,
            (x, y, bias, bias - 1.0, mean, invstd, True, "hardswish", [], [True, True, True]),
        ),
        "softmax": (ops.softmax, (x, 1, False)),
        "softmax_backward": (ops.softmax_backward, (x, s, 1, True)),
    }


NAMES = list(calls("contiguous", "contiguous"))


def _tensors(out):
    return [t for t in (out if isinstance(out, tuple) else (out,)) if t is not None]


def _contiguous_copies(args):
    return tuple(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args)


def test_every_flexible_op_is_covered():
    names = {s.name.split("::")[1] for s in torch._C._jit_get_all_schemas() if s.name.startswith("fused_act::")}
    flexible = {n for n in names if torch.Tag.flexible_layout in getattr(ops, n).default.tags}
    assert flexible == {name.split(" ")[0] for name in NAMES} | {"activation_"}
    public = {n for n in names if not n.startswith("_")}
    assert public - flexible == {"activation_mask", "activation_mask_", "activation_mask_backward"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a,b", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_any_layout_gives_contiguous_values_and_fake_strides(name, a, b):
    op, args = calls(a, b)[name]
    assert torch.Tag.flexible_layout in op.default.tags
    out = _tensors(op(*args))
    # running statistics are updated in place: the reference call gets fresh ones
    expected = _tensors(op(*[a.clone() if isinstance(a, torch.Tensor) else a for a in _contiguous_copies(args)]))
    for got, want in zip(out, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    with FakeTensorMode() as mode:
        fake_args = [mode.from_tensor(t) if isinstance(t, torch.Tensor) else t for t in args]
        fake = _tensors(op(*fake_args))
    for got, promised in zip(out, fake, strict=True):
        assert got.shape == promised.shape and got.dtype == promised.dtype
        long = [d for d in range(got.dim()) if got.size(d) > 1]
        assert [got.stride(d) for d in long] == [promised.stride(d) for d in long], (name, a, b)


# (N, C, 1, 1), a squeeze-excitation block's tensors: contiguous, channels-last and inductor's
# strides for the unit dimensions are one memory order, so no op may copy an operand to go from one
# to another (csrc/ops/front.h, has_layout).
UNIT_SHAPE = (2, 6, 1, 1)
UNIT_LAYOUTS = ["contiguous", "channels_last", "permuted", "wide_unit_dims"]
UNIT_PAIRS = list(itertools.product(UNIT_LAYOUTS, repeat=2))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("a,b", UNIT_PAIRS, ids=[f"{a}-{b}" for a, b in UNIT_PAIRS])
def test_unit_dims_strides_are_one_layout(name, a, b):
    op, args = calls(a, b, UNIT_SHAPE)[name]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        out = _tensors(op(*args))
    assert [e.name for e in prof.events() if e.name == "aten::copy_"] == [], (name, a, b)
    expected = _tensors(op(*[a.clone() if isinstance(a, torch.Tensor) else a for a in _contiguous_copies(args)]))
    for got, want in zip(out, expected, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_inplace_activation_any_layout(layout):
    x = laid_out(SHAPE, layout, 0)
    if layout == "expanded":
        x = x.clone()  # in place needs distinct elements; clone keeps expand's values, dense
    want = torch.nn.functional.gelu(x)
    ops.activation_(x, "gelu", [])
    torch.testing.assert_close(x, want, rtol=1e-12, atol=1e-12)


def test_inductor_channels_last_model_matches_eager():
    """The case the tag is for: inductor runs a CPU model's convolutions channels-last and hands
    our ops its channels-last buffers, forward and backward."""
    import fused_act

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.Hardswish(),
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 4, 1),
        torch.nn.SiLU(),
    ).double()
    converted, _ = fused_act.convert(model, keep_inplace=False, fold_norm=True)
    reference = copy.deepcopy(converted)
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    torch._dynamo.reset()
    compiled = torch.compile(converted, fullgraph=True)
    out, want = compiled(x), reference(x)
    torch.testing.assert_close(out, want)
    out.square().sum().backward()
    want.square().sum().backward()
    for p, q in zip(converted.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad)
    for b, c in zip(converted.buffers(), reference.buffers(), strict=True):
        torch.testing.assert_close(b, c)


@pytest.mark.parametrize("a,b", UNIT_PAIRS, ids=[f"{a}-{b}" for a, b in UNIT_PAIRS])
def test_mask_backward_takes_unit_dims_grads_as_they_are(a, b):
    """The mask's bits follow the forward's memory order; a gradient whose strides differ only in
    size-1 dimensions has that order already (csrc/ops/mask_autograd.cpp)."""
    import fused_act

    x = laid_out(UNIT_SHAPE, a, 0).requires_grad_()
    g = laid_out(UNIT_SHAPE, b, 1)
    y = fused_act.leaky_relu(x, 0.1, memory="mask")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        (got,) = torch.autograd.grad(y, x, g)
    assert [e.name for e in prof.events() if e.name == "aten::copy_"] == []
    torch.testing.assert_close(got, torch.where(x.detach() > 0, g, 0.1 * g), rtol=0, atol=0)


# A dense operand whose memory order is the output's with two groups of dimensions swapped (NCHW
# against channels-last, a transposed (B, L, D)) is relaid out by a batched transpose where both
# groups hold at least 16 elements (no aten::copy_ then), else by ATen's copy_ (csrc/ops/front.cpp,
# copy_into). The identity's backward returns its gradient in the saved tensor's layout, bit for
# bit. Partial tiles on both edges: 37 x 35 (float tiles are 16 x 16 or 8 x 8), 40 x 42 (16-bit
# ones 32 x 32); one full tile; a group of 3 and an empty batch (copy_).
TRANSPOSE_CASES = r"""
import torch, fused_act
bad = []
def pairs():  # (shape, grad, saved, whether the transpose serves)
    for n, c, h, w in [(2, 37, 5, 7), (3, 40, 6, 7), (1, 16, 4, 4), (2, 20, 1, 3), (0, 37, 5, 7)]:
        a = torch.randn(n, c, h, w, dtype=torch.float64)
        b = a.contiguous(memory_format=torch.channels_last)
        yield (n, c, h, w), a, b, n > 0 and h * w >= 16
        yield (n, c, h, w), b, a, n > 0 and h * w >= 16
    t = torch.randn(3, 40, 33, dtype=torch.float64)
    yield (3, 40, 33), t, t.transpose(1, 2).contiguous().transpose(1, 2), True
    m = torch.randn(24, 33, dtype=torch.float64)
    yield (24, 33), m.t().contiguous().t(), m, True
for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
    for shape, g, saved, transposed in pairs():
        g, saved = g.to(dtype), saved.to(dtype)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = torch.ops.fused_act.activation_backward(g, saved, "identity", [], True)
        copied = any(e.name == "aten::copy_" for e in prof.events())
        strides_differ = out.numel() > 0 and out.stride() != saved.stride()
        if strides_differ or not torch.equal(out, g) or copied == transposed:
            bad.append((str(dtype), shape, g.stride(), saved.stride(), copied))
print(fused_act.info()["cpu_isa"])
print(bad)
assert not bad, bad
"""


def test_transposed_operands_are_relaid_out_exactly():
    exec(TRANSPOSE_CASES, {})


@pytest.mark.parametrize("isa", ISAS)
def test_transposed_operands_every_cpu_instruction_set(isa):
    run_under_isa(isa, TRANSPOSE_CASES)
