"""Python side of the fused ops (csrc/ops/bias_act_ops.cpp, gated_ops.cpp): fake kernels for
torch.compile / torch.export, and the derivatives of glu_backward and gated_backward, which make
glu and gated twice differentiable (the first-order autograd of bias_act, glu and gated is C++:
csrc/ops/autograd.cpp).

    bias_act(x, bias, dim, act, params)                 y = f(x + bias along dim)
    bias_act_backward(grad, saved, bias, dim, act, params, from_output) -> (grad_x, grad_bias)
    glu(x, dim, gate_first, act, params)                f(a) * u, a and u the halves of x along dim
    glu_backward(grad, x, dim, gate_first, act, params) -> grad_x
    gated(a, u, act, params)                            f(a) * u
    gated_backward(grad, a, u, act, params)             -> (grad_a, grad_u)

bias_act keeps x and the bias for backward, or only its output when f's derivative can be
written with it (then y already holds the bias). The backward ops are differentiable too: their
derivatives are built from the activation ops, whose own double backward is a kernel.
"""

from __future__ import annotations

import torch

from .activation import saved_for

_ops = torch.ops.fused_act


# ------------------------------------------------------------------ helpers


def _channel_output(x: torch.Tensor, dim: int) -> torch.Tensor:
    """The layout the C++ front gives bias_act's outputs (x's own when channels are innermost
    or x is contiguous; contiguous otherwise)."""
    out = torch.empty_like(x)
    if out.stride(dim) == 1 or out.is_contiguous():
        return out
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


def _f(a, act, params):
    return _ops.activation(a, act, params)


def _fprime(h, a, act, params):
    """h * f'(a), whichever form (input or output) the kernel's backward takes."""
    if saved_for(act, tuple(params)) == "input":
        return _ops.activation_backward(h, a, act, params, False)
    return _ops.activation_backward(h, _f(a, act, params), act, params, True)


def _fsecond(h, k, a, act, params):
    """h * k * f''(a). In the output form f'(x) = D(y), so f''(x) = D'(y) * D(y): the double
    backward kernel gives h k D'(y), the backward kernel multiplies by D(y)."""
    if saved_for(act, tuple(params)) == "input":
        return _ops.activation_double_backward(h, k, a, act, params, False)
    y = _f(a, act, params)
    return _ops.activation_backward(_ops.activation_double_backward(h, k, y, act, params, True), y, act, params, True)


def _gated_double_backward(g, a, u, ga, gu, act, params):
    """Derivatives of (da, du) = (g u f'(a), g f(a)) against incoming (ga, gu):
    d/dg = ga u f'(a) + gu f(a)
    d/da = ga g u f''(a) + gu g f'(a)
    d/du = ga g f'(a)"""
    ga = torch.zeros_like(a) if ga is None else ga
    gu = torch.zeros_like(a) if gu is None else gu
    d_g = _fprime(ga * u, a, act, params) + gu * _f(a, act, params)
    d_a = _fsecond(ga, g * u, a, act, params) + _fprime(gu * g, a, act, params)
    d_u = _fprime(ga * g, a, act, params)
    return d_g, d_a, d_u


def _no_third_derivative(ctx, *grads):
    raise RuntimeError("fused_act: third and higher derivatives of the fused ops are not implemented")


def _register(name, backward, setup_context):
    torch.library.register_autograd(f"fused_act::{name}", backward, setup_context=setup_context)


# ------------------------------------------------------------------ fake kernels


@torch.library.register_fake("fused_act::bias_act")
def _(x, bias, dim, act, params):
    return _channel_output(x, dim % x.dim())


@torch.library.register_fake("fused_act::bias_act_backward")
def _(grad, saved, bias, dim, act, params, from_output):
    return _channel_output(saved, dim % saved.dim()), torch.empty_like(bias, memory_format=torch.contiguous_format)


def _glu_shape(x, dim):
    shape = list(x.shape)
    torch._check(shape[dim] % 2 == 0, lambda: f"fused_act.glu: dimension {dim} has odd size {shape[dim]}")
    shape[dim] //= 2
    return shape


@torch.library.register_fake("fused_act::glu")
def _(x, dim, gate_first, act, params):
    return x.new_empty(_glu_shape(x, dim))


@torch.library.register_fake("fused_act::glu_backward")
def _(grad, x, dim, gate_first, act, params):
    return x.new_empty(x.shape)


@torch.library.register_fake("fused_act::gated")
def _(a, u, act, params):
    return torch.empty_like(a)


@torch.library.register_fake("fused_act::gated_backward")
def _(grad, a, u, act, params):
    ga = torch.empty_like(a)
    return ga, torch.empty_like(ga)


# ------------------------------------------------------------------ bias_act
# Autograd of bias_act and bias_act_backward is in C++ (csrc/ops/autograd.cpp), like the
# plain activation's: it runs in every converted Linear/Conv2d.


# ------------------------------------------------------------------ glu and gated


# glu and gated have C++ autograd (csrc/ops/autograd.cpp); their backward ops' derivatives (the
# double backward, reached only with create_graph=True) are here.


def _glu_backward_setup(ctx, inputs, output):
    grad, x, dim, gate_first, act, params = inputs
    ctx.dim, ctx.gate_first, ctx.act, ctx.params = dim % x.dim(), gate_first, act, list(params)
    ctx.save_for_backward(grad, x)


def _glu_double_backward(ctx, g_dx):
    grad, x = ctx.saved_tensors
    first, second = x.chunk(2, ctx.dim)
    g_first, g_second = g_dx.chunk(2, ctx.dim)
    a, u, ga, gu = (first, second, g_first, g_second) if ctx.gate_first else (second, first, g_second, g_first)
    d_g, d_a, d_u = _gated_double_backward(grad, a, u, ga, gu, ctx.act, ctx.params)
    d_x = torch.cat([d_a, d_u] if ctx.gate_first else [d_u, d_a], ctx.dim)
    return d_g, d_x, None, None, None, None


_register("glu_backward", _glu_double_backward, _glu_backward_setup)


def _gated_backward_setup(ctx, inputs, output):
    grad, a, u, act, params = inputs
    ctx.act, ctx.params = act, list(params)
    ctx.save_for_backward(grad, a, u)


def _gated_double_backward_op(ctx, g_da, g_du):
    grad, a, u = ctx.saved_tensors
    d_g, d_a, d_u = _gated_double_backward(grad, a, u, g_da, g_du, ctx.act, ctx.params)
    return d_g, d_a, d_u, None, None


_register("gated_backward", _gated_double_backward_op, _gated_backward_setup)
