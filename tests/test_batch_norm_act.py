"""batch_norm_act (batch norm + activation in one op) against torch in float64: forward, running
statistics, backward (x, weight and bias gradients), train and eval, every activation case, every
dtype, the layouts the op handles (NCHW rows, channels innermost, a strided view); double
backward by gradgradcheck; opcheck, torch.compile and torch.export; the modules and convert's
folding of BatchNorm -> activation; errors; the CUDA thread bodies over a simulated grid."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import CASE_IDS, CASES, DTYPES, ISAS, run_under_isa, simulated_cuda
from torch import nn

import fused_act
from fused_act.registry import ACTIVATIONS

ops = torch.ops.fused_act

# |ours - reference| <= atol + rtol |reference|. Beside the activation's own few ulps (conftest's
# FWD_TOL / BWD_TOL), the statistics carry a sum's rounding (float sums of a few hundred values)
# and the backward two more sums per channel.
TOL = {
    torch.float64: (1e-10, 1e-7),  # torch's hardsigmoid uses a float 1/6 even in float64
    torch.float32: (2e-5, 2e-5),
    torch.float16: (4e-3, 4e-3),
    torch.bfloat16: (3e-2, 3e-2),
}

# (shape, channels-last): NCHW rows (per-row coefficients), channels innermost (per-column
# vectors: a Linear output and a channels-last image; with few channels, 16 rows of 20 taken as
# one of 320), rows shorter than a vector, a 3-D volume, and a row length that is not a multiple
# of any vector width.
LAYOUTS = {
    "nchw": ((4, 3, 5, 7), False),
    "nhwc": ((4, 3, 5, 7), True),
    "nhwc-narrow": ((4, 20, 12, 12), True),
    "linear": ((33, 19), False),
    "tiny-rows": ((8, 5, 2, 2), False),
    "ncdhw": ((2, 3, 4, 3, 5), False),
    "long-rows": ((2, 3, 16, 17), False),
}


def reference(x, rm, rv, w, b, training, momentum, eps, name, params):
    """torch's batch norm then the registry's reference activation, in float64 (running
    statistics updated on the copies passed)."""
    z = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    return ACTIVATIONS[name].reference(z, **params)


def make(shape, channels_last, dtype, seed=0, affine=True):
    g = torch.Generator().manual_seed(seed)
    c = shape[1]
    # a mean well away from 0 per channel, so that the statistics' shift (csrc: ChannelStatsOp) matters
    x = torch.randn(shape, generator=g, dtype=torch.float64) * 1.5 + torch.linspace(-3, 3, c).view(
        1, c, *[1] * (len(shape) - 2)
    )
    x = x.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    w = (torch.rand(c, generator=g, dtype=torch.float64) + 0.5).to(dtype) if affine else None
    b = (torch.rand(c, generator=g, dtype=torch.float64) - 0.5).to(dtype) if affine else None
    rm = torch.rand(c, generator=g, dtype=torch.float64).to(dtype)
    rv = (torch.rand(c, generator=g, dtype=torch.float64) + 0.5).to(dtype)
    grad = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    return x, w, b, rm, rv, grad


def check(name, params, shape, channels_last, dtype, training, affine=True, seed=0):
    x, w, b, rm, rv, grad = make(shape, channels_last, dtype, seed, affine)
    tol = TOL[dtype]
    leaves = [t.clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    xs, ws, bs = leaves
    rm_ours, rv_ours = rm.clone(), rv.clone()
    y = fused_act.batch_norm_act(xs, rm_ours, rv_ours, ws, bs, training, 0.1, 1e-5, name, **params)
    y.backward(grad)

    ref_leaves = [t.double().clone().requires_grad_() if t is not None else None for t in (x, w, b)]
    rm_ref, rv_ref = rm.double().clone(), rv.double().clone()
    y_ref = reference(ref_leaves[0], rm_ref, rv_ref, ref_leaves[1], ref_leaves[2], training, 0.1, 1e-5, name, params)
    y_ref.backward(grad.double())

    def close(a, e, what):
        torch.testing.assert_close(
            a.double(), e.to(a.dtype).double(), atol=tol[0], rtol=tol[1], msg=lambda m: f"{what}\n{m}"
        )

    assert y.dtype == dtype and y.shape == x.shape
    close(y, y_ref.detach(), "y")
    close(rm_ours, rm_ref, "running_mean")
    close(rv_ours, rv_ref, "running_var")
    # gradients compared relative to their largest value: the training-mode dx is a difference
    # of per-channel means, small where the terms cancel
    for ours, ref, what in zip(leaves, ref_leaves, ("x", "weight", "bias")):
        if ours is None:
            continue
        scale = ref.grad.abs().max().item() + 1.0
        torch.testing.assert_close(
            ours.grad.double() / scale,
            ref.grad.to(dtype).double() / scale,
            atol=tol[0],
            rtol=tol[1],
            msg=lambda m, what=what: f"grad {what}\n{m}",
        )


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_activation(case, dtype, training):
    name, params = case
    check(name, params, (4, 3, 5, 7), False, dtype, training)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("name", ["relu", "hardswish", "silu"])
def test_layouts_and_dtypes(name, layout, dtype, training):
    shape, channels_last = LAYOUTS[layout]
    check(name, ACTIVATIONS[name].params, shape, channels_last, dtype, training)


@pytest.mark.parametrize("present", ["weight", "bias", "neither"])
@pytest.mark.parametrize("running", [True, False], ids=["running", "no-running"])
def test_optional_arguments_get_their_own_gradients(present, running):
    """Absent weight / bias / running statistics take no autograd edge: each gradient must still
    reach its own tensor."""
    x, w, b, rm, rv, grad = make((3, 4, 5), False, torch.float64)
    w = w.requires_grad_() if present == "weight" else None
    b = b.requires_grad_() if present == "bias" else None
    x.requires_grad_()
    stats = (rm, rv) if running else (None, None)
    y = fused_act.batch_norm_act(x, *stats, w, b, True, 0.1, 1e-5, "silu")
    xr = x.detach().clone().requires_grad_()
    wr = w.detach().clone().requires_grad_() if w is not None else None
    br = b.detach().clone().requires_grad_() if b is not None else None
    yr = F.silu(F.batch_norm(xr, None, None, wr, br, True))
    y.backward(grad), yr.backward(grad)
    for ours, ref in ((x, xr), (w, wr), (b, br)):
        if ours is not None:
            torch.testing.assert_close(ours.grad, ref.grad)
    assert torch.autograd.gradgradcheck(
        lambda x: fused_act.batch_norm_act(x, None, None, w, b, True, 0.1, 1e-5, "silu"), (x,)
    )


def test_no_affine_and_strided_view():
    check("gelu", {"approximate": "none"}, (4, 3, 5, 7), False, torch.float64, True, affine=False)
    x = torch.randn(4, 6, 5, 7, dtype=torch.float64)[:, ::2]  # neither contiguous nor channels-last
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    y = fused_act.batch_norm_act(x, rm, rv, None, None, True, 0.1, 1e-5, "relu")
    torch.testing.assert_close(y, F.relu(F.batch_norm(x, None, None, training=True)))


def test_statistics_keep_precision_far_from_zero():
    """A channel whose mean is 1e4 its standard deviation: sums of x would cancel in float32;
    the statistics shift by one element of the channel first."""
    g = torch.Generator().manual_seed(1)
    x64 = torch.randn(16, 2, 32, 32, generator=g, dtype=torch.float64) + 1e4
    x = x64.float()
    y = fused_act.batch_norm_act(x, None, None, None, None, True, 0.1, 1e-5, "identity")
    ref = F.batch_norm(x.double(), None, None, training=True)
    torch.testing.assert_close(y.double(), ref, atol=2e-3, rtol=0)  # float32 x itself is 1e-3 apart


def test_constant_channel():
    """Zero variance: invstd = 1 / sqrt(eps), no NaN from a rounded negative variance."""
    x = torch.full((4, 2, 3, 3), 0.1)
    y = fused_act.batch_norm_act(x, None, None, None, None, True, 0.1, 1e-5, "sigmoid")
    torch.testing.assert_close(y, torch.full_like(x, 0.5))


@pytest.mark.parametrize("name", ["relu", "silu", "elu", "sigmoid"])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_gradcheck_and_gradgradcheck(name, training):
    x, w, b, rm, rv, _ = make((3, 2, 3, 4), False, torch.float64, seed=3)
    params = ACTIVATIONS[name].params

    def f(x, w, b):
        return fused_act.batch_norm_act(x, rm.clone(), rv.clone(), w, b, training, 0.1, 1e-5, name, **params)

    inputs = tuple(t.clone().requires_grad_() for t in (x, w, b))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_opcheck(training):
    x, w, b, rm, rv, grad = make((4, 3, 5, 7), False, torch.float32)
    args = (x.requires_grad_(), w.requires_grad_(), b.requires_grad_(), rm, rv, training, 0.1, 1e-5, "relu", [])
    torch.library.opcheck(ops.batch_norm_act.default, args)
    y, mean, invstd = ops.batch_norm_act(*[a.detach() if isinstance(a, torch.Tensor) else a for a in args])
    torch.library.opcheck(
        ops.batch_norm_act_backward.default,
        (grad, x.detach(), w.detach(), b.detach(), mean, invstd, training, "relu", [], [True, True, True]),
    )


def _conv_bn_act(act):
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), act, nn.Conv2d(8, 4, 1), nn.BatchNorm2d(4))


@pytest.mark.parametrize("act", [nn.ReLU(inplace=True), nn.Hardswish(), nn.SiLU()], ids=lambda m: type(m).__name__)
def test_convert_folds_batch_norm(act):
    torch.manual_seed(0)
    original = _conv_bn_act(act).double()  # float64: a check of the math, not of float32 rounding
    copied = copy.deepcopy(original)
    bn = copied[1]
    converted, report = fused_act.convert(copied, fold_norm=True)
    assert isinstance(converted[1], fused_act.nn.BatchNorm2d) and isinstance(converted[2], nn.Identity)
    assert type(converted[4]) is nn.BatchNorm2d  # no activation after it: left alone
    # the folded module holds the batch norm's own parameter and buffer objects
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        assert getattr(converted[1], name) is getattr(bn, name)
    assert any(r.kind == "fold" for r in report.replaced)
    assert converted.state_dict().keys() == original.state_dict().keys()
    x = torch.randn(4, 3, 9, 9, dtype=torch.float64)
    for mode in ("train", "eval"):
        getattr(original, mode)(), getattr(converted, mode)()
        a, b = original(x), converted(x)
        torch.testing.assert_close(b, a, atol=1e-10, rtol=1e-8)
        a.square().sum().backward()
        b.square().sum().backward()
        for (n, p), q in zip(original.named_parameters(), converted.parameters()):
            torch.testing.assert_close(q.grad, p.grad, atol=1e-9, rtol=1e-8, msg=lambda m, n=n: f"{n}: {m}")
            p.grad, q.grad = None, None
    for n, buf in original.named_buffers():
        torch.testing.assert_close(converted.get_buffer(n), buf, atol=1e-12, rtol=1e-10)


def test_convert_fold_norm_with_functional():
    """functional=True traces the model after folding: the fused batch norm stays one node."""
    torch.manual_seed(0)
    original = _conv_bn_act(nn.ReLU()).double()
    converted, _ = fused_act.convert(copy.deepcopy(original), fold_norm=True, functional=True)
    assert any(isinstance(m, fused_act.nn.BatchNorm2d) for m in converted.modules())
    x = torch.randn(2, 3, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(converted(x), original(x), atol=1e-10, rtol=1e-8)


def test_convert_fold_norm_off_and_mobilenet():
    torchvision = pytest.importorskip("torchvision")
    model = torchvision.models.mobilenet_v3_small()
    off, _ = fused_act.convert(copy.deepcopy(model))  # opt-in
    assert not any(isinstance(m, fused_act.nn.BatchNorm2d) for m in off.modules())
    on, _ = fused_act.convert(copy.deepcopy(model).double(), fold_norm=True)
    # every Conv2dNormActivation with an activation: 23 of them
    assert sum(isinstance(m, fused_act.nn.BatchNorm2d) for m in on.modules()) == 23
    # float64: training-mode batch norm over 2 x 2 x 2 values per channel (the last stages)
    # amplifies float32's rounding ~1e7-fold (tests/test_convert.py)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    model.double().train(), on.train()
    torch.manual_seed(0)  # the classifier's dropout
    expected = model(x)
    torch.manual_seed(0)
    torch.testing.assert_close(on(x), expected, atol=1e-8, rtol=1e-6)


def test_module_matches_torch_and_compiles():
    torch.manual_seed(0)
    fused = fused_act.nn.BatchNorm2d(6, momentum=None, activation="leaky_relu", negative_slope=0.2)
    ref = nn.BatchNorm2d(6, momentum=None)
    x = torch.randn(5, 6, 4, 4)
    for _ in range(3):
        torch.testing.assert_close(fused(x), F.leaky_relu(ref(x), 0.2))
    torch.testing.assert_close(fused.running_var, ref.running_var)
    assert fused.num_batches_tracked.item() == 3
    assert "activation='leaky_relu', negative_slope=0.2" in repr(fused)
    fused.eval(), ref.eval()
    torch.testing.assert_close(fused(x), F.leaky_relu(ref(x), 0.2))

    # momentum=None reads num_batches_tracked as a Python float: eager only
    fused = fused_act.nn.BatchNorm2d(6, activation="leaky_relu", negative_slope=0.2)
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    before = fused.running_mean.clone()
    y = compiled(x)
    assert not torch.equal(fused.running_mean, before)  # the mutation survives functionalization
    y.sum().backward()
    assert fused.weight.grad is not None
    exported = torch.export.export(fused.eval(), (x,))
    torch.testing.assert_close(exported.module()(x), fused(x))


def test_channels_last_output_and_1d_3d_modules():
    x = torch.randn(4, 6, 5, 5).contiguous(memory_format=torch.channels_last)
    m = fused_act.nn.BatchNorm2d(6, activation="relu")
    assert m(x).is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(
        fused_act.nn.BatchNorm1d(6, activation="tanh")(x[:, :, 0, 0]),
        torch.tanh(F.batch_norm(x[:, :, 0, 0], None, None, training=True)),
    )
    v = torch.randn(2, 6, 3, 3, 3)
    torch.testing.assert_close(
        fused_act.nn.BatchNorm3d(6, activation="silu")(v), F.silu(F.batch_norm(v, None, None, training=True))
    )


def test_errors():
    x = torch.randn(4, 3, 5)
    rm, rv = torch.zeros(3), torch.ones(3)
    with pytest.raises(TypeError, match=r"batch_norm_act\(relu\).*floating-point"):
        fused_act.batch_norm_act(torch.ones(4, 3, dtype=torch.int32), rm, rv, name="relu")
    with pytest.raises(RuntimeError, match="weight must be 1-D with x.size\\(1\\) = 3"):
        fused_act.batch_norm_act(x, rm, rv, torch.ones(4), None, True, name="relu")
    with pytest.raises(RuntimeError, match="eval mode .* needs running_mean"):
        fused_act.batch_norm_act(x, None, None, name="relu")
    with pytest.raises(RuntimeError, match="more than 1 value per channel"):
        fused_act.batch_norm_act(torch.randn(1, 3), None, None, training=True, name="relu")
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        fused_act.batch_norm_act(torch.randn(3), rm, rv, name="relu")
    with pytest.raises(RuntimeError, match="eps must be > 0"):
        fused_act.batch_norm_act(x, rm, rv, eps=0.0, name="relu")
    with pytest.raises(ValueError):
        fused_act.batch_norm_act(x, rm, rv, name="not_an_activation")
    with pytest.raises(ValueError, match=r"fused_act.celu\(alpha=0\)"):
        fused_act.nn.BatchNorm2d(3, activation="celu", alpha=0.0)(torch.randn(2, 3, 2, 2))


@pytest.mark.parametrize("layout", ["nchw", "nhwc", "nhwc-narrow", "linear", "long-rows"])
@pytest.mark.parametrize("threads", [1, 7, 64])
def test_cuda_thread_bodies_simulated(layout, threads):
    shape, channels_last = LAYOUTS[layout]
    with simulated_cuda(threads):
        for dtype in (torch.float64, torch.bfloat16):
            check("silu", {}, shape, channels_last, dtype, training=True)
            check("relu", {}, shape, channels_last, dtype, training=False)


@pytest.mark.parametrize("isa", ISAS)
def test_instruction_sets(isa):
    script = """
import torch, fused_act, torch.nn.functional as F
print(fused_act.info()["cpu_isa"])
for dt in (torch.float32, torch.bfloat16):
    for cl in (False, True):
        x = torch.randn(4, 19, 6, 5).to(dt)
        if cl: x = x.contiguous(memory_format=torch.channels_last)
        x.requires_grad_()
        y = fused_act.batch_norm_act(x, None, None, None, None, True, 0.1, 1e-5, "hardswish")
        xr = x.detach().double().requires_grad_()
        yr = F.hardswish(F.batch_norm(xr, None, None, training=True))
        g = torch.rand_like(yr)
        y.backward(g.to(dt)); yr.backward(g)
        tol = 2e-5 if dt == torch.float32 else 3e-2
        torch.testing.assert_close(y.double(), yr.to(dt).double(), atol=tol, rtol=tol)
        torch.testing.assert_close(x.grad.double(), xr.grad.to(dt).double(), atol=tol, rtol=tol)
"""
    run_under_isa(isa, script)
