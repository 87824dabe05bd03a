"""The ops are well-formed torch operators: opcheck (schema, fake kernel, autograd
registration, AOT dispatch), torch.compile(fullgraph=True) and torch.export."""

from __future__ import annotations

import pytest
import torch
from conftest import CASE_IDS, CASES, DEVICES, assert_compiles_like_eager

import fused_act

ops = torch.ops.fused_act


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_opcheck_every_op(case, device):
    name, params = case
    kernel, args = fused_act.ACTIVATIONS[name].kernel_args(params)
    from_output = fused_act.ops.saved_for(kernel, tuple(args)) != "input"
    x = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    g = torch.randn(3, 5, dtype=torch.float64, device=device, requires_grad=True)
    s = (torch.randn(3, 5, dtype=torch.float64, device=device) * 0.5).requires_grad_()
    torch.library.opcheck(ops.activation, (x, kernel, args))
    torch.library.opcheck(ops.activation_, (x.detach().clone(), kernel, args))
    torch.library.opcheck(ops.activation_backward, (g, s, kernel, args, from_output))
    torch.library.opcheck(
        ops.activation_double_backward, (g.detach(), g.detach(), s.detach(), kernel, args, from_output)
    )


@pytest.mark.parametrize("inplace", [False, True])
def test_compile_fullgraph_model(inplace):
    model = torch.nn.Sequential(
        torch.nn.Linear(16, 32),
        fused_act.nn.LeakyReLU(0.1, inplace=inplace),
        torch.nn.Linear(32, 32),
        fused_act.nn.Activation("leaky_tanh", a=0.3),
        torch.nn.Linear(32, 32),
        fused_act.nn.GELU(approximate="tanh"),
        torch.nn.Linear(32, 4),
        fused_act.nn.ELU(inplace=inplace),
    ).double()
    assert_compiles_like_eager(model, torch.randn(8, 16, dtype=torch.float64))


def test_compile_inductor_fullgraph():
    torch._dynamo.reset()
    f = torch.compile(lambda t: fused_act.softsign(t) * 2 + fused_act.mish(t), fullgraph=True)
    x = torch.randn(100, requires_grad=True)
    y = f(x)
    torch.testing.assert_close(y, torch.nn.functional.softsign(x) * 2 + torch.nn.functional.mish(x))
    y.sum().backward()
    xr = x.detach().requires_grad_()
    (torch.nn.functional.softsign(xr) * 2 + torch.nn.functional.mish(xr)).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad)


def test_export_runs():
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), fused_act.nn.SiLU(), torch.nn.Linear(8, 2), fused_act.nn.RescaledSigmoid()
    )
    x = torch.randn(4, 8)
    ep = torch.export.export(model, (x,))
    assert "fused_act.activation" in str(ep.graph)
    torch.testing.assert_close(ep.module()(x), model(x))


def test_every_op_has_a_cpp_graph_node():
    """Autograd of every op is C++ (csrc/ops/*autograd.cpp), no Python Function on the hot path:
    the graph nodes are the C++ ones, for the forward ops and the backward ops (create_graph)."""
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    nodes = {
        "activation": fused_act.gelu(x),
        "activation_": fused_act.tanh(x * 1.0, inplace=True),
        "mask": fused_act.relu(x, memory="mask"),
        "mask_": fused_act.relu(x * 1.0, inplace=True, memory="mask"),
        "softmax": fused_act.softmax(x, -1),
        "log_softmax": fused_act.log_softmax(x, 0),
    }
    for what, y in nodes.items():
        assert y.grad_fn.name().startswith("fused_act::"), (what, y.grad_fn.name())
        (dx,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=True)
        # BackwardCFunction: the node of a Python autograd.Function (and of register_autograd)
        assert not isinstance(dx.grad_fn, torch.autograd.function.BackwardCFunction), (what, dx.grad_fn.name())
