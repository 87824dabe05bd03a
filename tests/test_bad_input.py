"""Bad input gets a clear error that names the op and the problem."""

from __future__ import annotations

import pytest
import torch

import fused_act

ops = torch.ops.fused_act


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64, torch.bool, torch.complex64, torch.uint8])
def test_non_floating_dtypes(dtype):
    x = torch.ones(4, dtype=dtype)
    with pytest.raises(TypeError, match=r"fused_act\.elu: expected a floating-point tensor"):
        fused_act.elu(x)
    with pytest.raises(TypeError, match=r"fused_act\.relu: expected a floating-point tensor"):
        fused_act.relu(x, inplace=True)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda x: fused_act.leaky_tanh(x, a=-0.1), r"fused_act\.leaky_tanh\(a=-0\.1\): a must be >= 0"),
        (lambda x: fused_act.celu(x, alpha=0.0), r"fused_act\.celu\(alpha=0\): alpha must not be 0"),
        (lambda x: fused_act.softplus(x, beta=0.0), r"fused_act\.softplus\(beta=0, threshold=20\): beta must not be 0"),
        (lambda x: fused_act.hardtanh(x, 2.0, 1.0), r"min_val cannot be greater than max_val"),
    ],
)
def test_parameters_out_of_range(call, match):
    with pytest.raises(ValueError, match=match):
        call(torch.randn(3))


def test_bad_parameter_names_and_values():
    with pytest.raises(TypeError, match=r"fused_act\.elu: unexpected parameter\(s\) \['beta'\]"):
        fused_act.elu(torch.randn(3), beta=1.0)
    with pytest.raises(TypeError, match=r"takes at most 1 parameter"):
        fused_act.elu(torch.randn(3), 1.0, 2.0)
    with pytest.raises(ValueError, match=r"approximate must be 'none' or 'tanh'"):
        fused_act.gelu(torch.randn(3), approximate="erf")
    with pytest.raises(ValueError, match=r"unknown activation 'swish'"):
        fused_act.activation(torch.randn(3), "swish")
    with pytest.raises(ValueError, match=r"unknown activation"):
        fused_act.nn.Activation("nope")


def test_raw_op_checks():
    x = torch.randn(4)
    with pytest.raises(RuntimeError, match=r"fused_act: unknown activation 'nope'"):
        ops.activation(x, "nope", [])
    with pytest.raises(
        RuntimeError, match=r"fused_act\.hardtanh: expected 2 parameter\(s\) \(min_val, max_val\), got 1"
    ):
        ops.activation(x, "hardtanh", [1.0])
    with pytest.raises(RuntimeError, match=r"fused_act\.tanh: grad has shape \[3\], expected \[4\]"):
        ops.activation_backward(torch.randn(3), x, "tanh", [], True)
    with pytest.raises(TypeError, match=r"fused_act\.tanh: grad has dtype Double, expected Float"):
        ops.activation_backward(x.double(), x, "tanh", [], True)
    with pytest.raises(
        RuntimeError, match=r"fused_act\.gelu: backward with these parameters needs the forward's input"
    ):
        ops.activation_backward(x, x, "gelu", [], True)


def test_inplace_on_leaf_that_requires_grad():
    x = torch.randn(4, requires_grad=True)
    with pytest.raises(
        RuntimeError, match="a leaf Variable that requires grad (is being|has been) used in an in-place operation"
    ):
        fused_act.relu(x, inplace=True)
    with pytest.raises(RuntimeError, match="a view of a leaf Variable that requires grad"):
        fused_act.tanh(x[1:], inplace=True)
    with pytest.raises(  # the 1-bit-mask form (its own C++ autograd) checks as well
        RuntimeError, match="a leaf Variable that requires grad (is being|has been) used in an in-place operation"
    ):
        fused_act.relu(x, inplace=True, memory="mask")
    with torch.no_grad():  # allowed without autograd, as in torch
        fused_act.relu(x, inplace=True)


def test_wrong_device_is_reported():
    meta = torch.empty(4, device="meta")
    out = fused_act.tanh(meta)  # fake/meta kernels exist for tracing
    assert out.device.type == "meta" and out.shape == meta.shape
