"""How each provider runs a case: the callables that ``timing.measure`` times.

Providers
  fused    fused_act's public API (``fused_act.activation``), backward-only through the
           ``activation_backward`` op, as autograd calls it.
  eager    the registry's reference composition (what the kernel must match), run by PyTorch.
  compile  ``torch.compile`` (inductor) of that composition, compiled once for this shape
           (``dynamic=False``), after ``torch._dynamo.reset()``; the first call, which
           compiles, is timed separately as compile time.
Baselines
  copy     ``out.copy_(x)`` into an existing buffer (the preallocated memory limit)
  clone    ``x.clone()`` (the allocating memory limit: the fresh output's page faults included)

Variants
  alloc    outputs are fresh tensors (``y = f(x)``, ``dx = autograd.grad(y, x, g)``).
  inplace  forward writes into an existing buffer, refilled from x before each call outside the
           timed region (applying an activation repeatedly would drift towards inf, 0 or
           denormals, e.g. squared_relu). fused: ``activation(buf, inplace=True)``;
           eager: torch's ``inplace=True`` module where torch has one, otherwise
           ``buf.copy_(reference(buf))`` (a composition has no in-place form);
           compile: the compiled ``buf.copy_(reference(buf))`` (inductor writes straight into buf).
           With backward (fwdbwd), the buffer is a fresh autograd non-leaf (``leaf.clone()``, in
           setup) and backward allocates dx as always; compile has no in-place autograd form.
"""

from __future__ import annotations

import torch

import fused_act
from fused_act.registry import ACTIVATIONS

from .cases import DTYPES, Case
from .timing import Runner, time_once


class Tensors:
    """The inputs of one case: values in the activations' interesting range (normal, std 2; no
    inf/NaN/denormals), an upstream gradient, and a buffer for in-place runs."""

    def __init__(self, case: Case, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        dt = DTYPES[case.dtype]
        self.x = (torch.randn(case.size, generator=g) * 2).to(dt).to(case.device)
        self.grad = torch.randn(case.size, generator=g).to(dt).to(case.device)
        self.buf = torch.empty_like(self.x)
        self.out = torch.empty_like(self.x)
        self.leaf = self.x.clone().requires_grad_()

    def refill(self):
        self.buf.copy_(self.x)


def reference_fn(case: Case):
    spec = ACTIVATIONS[case.act]
    params = dict(spec.params)
    return lambda x: spec.reference(x, **params)


def eager_inplace_fn(case: Case):
    """torch's own in-place form where it has one, else the composition copied back."""
    spec = ACTIVATIONS[case.act]
    if spec.torch_inplace and spec.torch_module:
        module = getattr(torch.nn, spec.torch_module)(**spec.params, inplace=True)
        return module
    ref = reference_fn(case)
    return lambda b: b.copy_(ref(b))


def baselines(case: Case, t: Tensors) -> dict[str, Runner]:
    return {"copy": Runner(lambda: t.out.copy_(t.x)), "clone": Runner(lambda: t.x.clone())}


def _grad(y, x, g, retain=False):
    (dx,) = torch.autograd.grad(y, x, g, retain_graph=retain)
    return dx


def _fused_fn(case: Case):
    params = dict(ACTIVATIONS[case.act].params)
    return lambda x, inplace=False: fused_act.activation(x, case.act, inplace=inplace, **params)


class Built:
    """A provider's runner for a case, plus what building it cost (compile time) and the
    graph whose saved tensors are measured for memory (``graph_fn``: runs forward with grad)."""

    def __init__(self, runner: Runner, compile_s: float | None = None, graph_fn=None):
        self.runner, self.compile_s, self.graph_fn = runner, compile_s, graph_fn


def build(provider: str, case: Case, t: Tensors) -> Built | None:
    """The runner for ``provider`` on ``case``, or None where the provider has no such form."""
    if provider == "compile":
        return _build_compile(case, t)
    f = _fused_fn(case) if provider == "fused" else reference_fn(case)
    mode, var = case.mode, case.variant
    if mode == "fwd" and var == "alloc":
        return Built(Runner(lambda: f(t.x)))
    if mode == "fwd":
        if provider == "fused":
            return Built(Runner(lambda: f(t.buf, inplace=True), t.refill))
        fi = eager_inplace_fn(case)
        return Built(Runner(lambda: fi(t.buf), t.refill))
    if mode == "bwd":
        if provider == "fused":
            kernel, kparams = case.kernel
            saved = t.x if case.saved == "input" else fused_act.activation(t.x, case.act)
            op = torch.ops.fused_act.activation_backward
            from_output = case.saved == "output"
            return Built(Runner(lambda: op(t.grad, saved, kernel, kparams, from_output)))
        y = f(t.leaf)
        return Built(Runner(lambda: _grad(y, t.leaf, t.grad, retain=True)))
    # fwdbwd
    if var == "alloc":
        return Built(Runner(lambda: _grad(f(t.leaf), t.leaf, t.grad)), graph_fn=lambda: f(t.leaf))
    holder = {}

    def setup():  # a non-leaf buffer that requires grad, allocated and filled outside the clock
        holder["h"] = t.leaf.clone()

    if provider == "fused":
        return Built(Runner(lambda: _grad(f(holder["h"], inplace=True), t.leaf, t.grad), setup))
    spec = ACTIVATIONS[case.act]
    if not (spec.torch_inplace and spec.torch_module):
        return None
    fi = eager_inplace_fn(case)
    return Built(Runner(lambda: _grad(fi(holder["h"]), t.leaf, t.grad), setup))


def _build_compile(case: Case, t: Tensors) -> Built | None:
    # A fresh dynamo state per case: the lambdas below share code objects across cases, and
    # without a reset dynamo would pile up recompiles and fall back to eager at its cache limit.
    torch._dynamo.reset()
    ref = reference_fn(case)
    mode, var = case.mode, case.variant
    if mode == "fwd" and var == "alloc":
        c = torch.compile(ref, dynamic=False)
        return Built(Runner(lambda: c(t.x)), time_once(lambda: c(t.x), case.device))
    if mode == "fwd":
        c = torch.compile(lambda b: b.copy_(ref(b)), dynamic=False)
        t.refill()
        return Built(Runner(lambda: c(t.buf), t.refill), time_once(lambda: c(t.buf), case.device))
    if var == "inplace":
        return None
    c = torch.compile(ref, dynamic=False)
    if mode == "bwd":
        # compile time: the forward graph and the backward graph (compiled on first backward)
        holder = {}

        def first():
            holder["y"] = c(t.leaf)
            return _grad(holder["y"], t.leaf, t.grad, retain=True)

        cs = time_once(first, case.device)
        y = holder["y"]
        return Built(Runner(lambda: _grad(y, t.leaf, t.grad, retain=True)), cs)
    run = lambda: _grad(c(t.leaf), t.leaf, t.grad)  # noqa: E731
    return Built(Runner(run), time_once(run, case.device), graph_fn=lambda: c(t.leaf))
