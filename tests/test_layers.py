"""fused_act.nn layers built on the fusions: Linear / Conv2d with an activation load torch's
weights and match torch's layer followed by the activation (outputs and every gradient);
BiasAct; the GLU family."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import fused_act
from fused_act import nn as fnn


def grads_of(module, x, g):
    x = x.clone().requires_grad_()
    y = module(x)
    params = [p for p in module.parameters()]
    return (y, *torch.autograd.grad(y, [x, *params], g))


@pytest.mark.parametrize(
    "act, torch_act", [("relu", nn.ReLU()), ("gelu", nn.GELU()), ("tanh", nn.Tanh()), ("leaky_relu", nn.LeakyReLU(0.2))]
)
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(act, torch_act, bias):
    torch.manual_seed(0)
    ref = nn.Linear(12, 7, bias=bias).double()
    params = {"negative_slope": 0.2} if act == "leaky_relu" else {}
    ours = fnn.Linear(12, 7, bias=bias, activation=act, **params).double()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(5, 3, 12, dtype=torch.float64)
    g = torch.randn(5, 3, 7, dtype=torch.float64)
    for a, b in zip(grads_of(ours, x, g), grads_of(nn.Sequential(ref, torch_act), x, g)):
        torch.testing.assert_close(a, b)
    assert f"activation='{act}'" in repr(ours)


@pytest.mark.parametrize("channels_last", [False, True])
def test_conv2d_matches_torch(channels_last):
    torch.manual_seed(0)
    ref = nn.Conv2d(3, 8, 3, padding=1, stride=2).double()
    ours = fnn.Conv2d(3, 8, 3, padding=1, stride=2, activation="silu").double()
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        ref, ours = ref.to(memory_format=torch.channels_last), ours.to(memory_format=torch.channels_last)
    g = torch.randn(2, 8, 5, 5, dtype=torch.float64)
    for a, b in zip(grads_of(ours, x, g), grads_of(nn.Sequential(ref, nn.SiLU()), x, g)):
        torch.testing.assert_close(a, b)
    # unbatched input: channels are dim 0
    torch.testing.assert_close(ours(x[0]), F.silu(ref(x[0])))


def test_conv2d_activation_parameters():
    conv = fnn.Conv2d(2, 2, 1, activation="hardtanh", min_val=-0.5, max_val=0.5)
    assert conv.activation_params == {"min_val": -0.5, "max_val": 0.5}
    x = torch.randn(1, 2, 3, 3) * 4
    torch.testing.assert_close(conv(x), F.hardtanh(F.conv2d(x, conv.weight, conv.bias), -0.5, 0.5))


def test_bias_act_module():
    m = fnn.BiasAct(4, "elu", alpha=0.5)
    assert torch.equal(m.bias, torch.zeros(4))
    with torch.no_grad():
        m.bias.copy_(torch.tensor([1.0, -1.0, 0.5, 0.0]))
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(m(x), F.elu(x + m.bias.view(4, 1), 0.5))


def test_glu_modules():
    x = torch.randn(3, 10, dtype=torch.float64)
    a, b = x.chunk(2, -1)
    torch.testing.assert_close(fnn.GLU()(x), nn.GLU()(x))
    torch.testing.assert_close(fnn.SwiGLU(gate="first")(x), F.silu(a) * b)
    torch.testing.assert_close(fnn.GeGLU(approximate="tanh")(x), F.gelu(b, approximate="tanh") * a)
    torch.testing.assert_close(fnn.ReGLU()(x), F.relu(b) * a)
    with pytest.raises(ValueError, match="gate must be"):
        fnn.GLU(gate="middle")


def test_linear_compiles_and_exports():
    m = fnn.Linear(6, 4, activation="gelu")
    x = torch.randn(3, 6)
    torch._dynamo.reset()
    torch.testing.assert_close(torch.compile(m, fullgraph=True, backend="aot_eager")(x), m(x))
    ep = torch.export.export(m, (x,))
    torch.testing.assert_close(ep.module()(x), m(x))
    assert fused_act.nn.Linear is fnn.Linear
