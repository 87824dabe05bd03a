"""``convert_functional``: rewrites activation calls in ``forward`` (``F.relu(x)``, ``torch.tanh(x)``,
``x.sigmoid()``, ...) into fused_act calls in a torch.fx graph."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from .. import functional as _ffn
from .. import nn as _fnn
from ..registry import ACTIVATIONS
from .fold import _fold_graph
from .report import ConvertReport, Left, Replaced, _fn_name, _node_where
from .selection import Selector, _as_list, _selected
from .tables import _FUNCTIONS, _FUSED_FUNCTIONS, _FUSED_MODULES, _METHODS, _NO_EQUIVALENT_FUNCTIONS, _hashable
from .target import _Target


def _bind(params: tuple[str, ...], inplace_variant: bool, args: tuple, kwargs: dict) -> tuple[Any, dict, bool]:
    """(input, {param: value}, inplace) from a torch-style call; missing params take the
    registry default (which is torch's). Raises TypeError if the call does not fit."""
    P = inspect.Parameter
    sig = inspect.Signature(
        [P("input", P.POSITIONAL_OR_KEYWORD)]
        + [P(n, P.POSITIONAL_OR_KEYWORD, default=P.empty) for n in params]
        + ([] if inplace_variant else [P("inplace", P.POSITIONAL_OR_KEYWORD, default=False)])
    )
    b = sig.bind_partial(*args, **kwargs)
    if "input" not in b.arguments:
        raise TypeError("no input")
    vals = {n: b.arguments[n] for n in params if n in b.arguments}
    return b.arguments["input"], vals, bool(inplace_variant or b.arguments.get("inplace", False))


_FUSED_NORMS = (_fnn.BatchNorm1d, _fnn.BatchNorm2d, _fnn.BatchNorm3d)


class _Tracer(fx.Tracer):
    """symbolic_trace, with fused_act modules and functions kept as single nodes: tracing into
    them would hit the in-place branch (``x.requires_grad`` on a Proxy)."""

    def __init__(self):
        super().__init__(autowrap_functions=tuple(_FUSED_FUNCTIONS))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        # the fused batch norms (fold_norm) too: like torch's, their forward tests x.dim()
        return (
            type(m) in _FUSED_MODULES
            or type(m) in _FUSED_NORMS
            or isinstance(m, _fnn.Activation)
            or super().is_leaf_module(m, qualname)
        )


def convert_functional(
    model: nn.Module,
    include: Selector | Iterable[Selector] | None = None,
    exclude: Selector | Iterable[Selector] | None = None,
    *,
    to: str | None = None,
    keep_inplace: bool = True,
    fold: bool = False,
    **params,
) -> tuple[fx.GraphModule, ConvertReport]:
    """Rewrites functional activation calls in ``forward`` into fused_act calls with torch.fx.

    Traces ``model`` with ``torch.fx.symbolic_trace`` (torch.nn leaf modules and fused_act
    modules stay single ``call_module`` nodes) and replaces every ``call_function`` /
    ``call_method`` node that applies a registered activation (``F.relu``, ``torch.relu``,
    ``x.relu()``, ``F.leaky_relu(x, 0.2)``, ``F.gelu(x, approximate="tanh")``, ``torch.tanh``,
    ``torch.sigmoid``, ``F.hardtanh``, ``F.silu``, ..., and their in-place variants) with the
    fused function of the same parameters (or with ``to`` and ``**params``). Selectors match the
    activation name, the function's name (``"relu"``, ``"gelu"``) or a pattern on
    ``"<module path>:<node name>"``. Returns ``(graph_module, report)``; the original model is
    not modified. Parameters and buffers keep their names, so ``state_dict`` keys are unchanged.
    With ``fold`` (off by default, as in ``convert``), a ``nn.Linear`` / ``nn.Conv2d`` call whose
    output only feeds a fused activation becomes one ``fused_act.nn.Linear`` / ``Conv2d`` call
    (``_fold_graph``).

    Raises TypeError (with symbolic_trace's reason) for models fx cannot trace: Python control
    flow on tensor values, calls into non-torch libraries, ``*args`` forwards, ... For those,
    ``convert`` (module swapping) still works.
    """
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError("fused_act.convert_functional: TorchScript modules cannot be converted")
    target = _Target.make(to, params) if to is not None else None
    if to is None and params:
        raise TypeError(f"fused_act.convert_functional: parameters {sorted(params)} given without to=")
    include, exclude = _as_list(include), _as_list(exclude)

    tracer = _Tracer()
    try:
        graph = tracer.trace(model)
    except Exception as e:  # fx raises TraceError, TypeError, RuntimeError... depending on the construct
        raise TypeError(
            f"fused_act.convert_functional: torch.fx cannot trace {type(model).__name__} "
            f"({type(e).__name__}: {e}). Module activations can still be converted with "
            "fused_act.convert(model); functional calls in this forward stay torch's."
        ) from e
    name = model.__class__.__name__ if isinstance(model, nn.Module) else "GraphModule"
    gm = fx.GraphModule(tracer.root, graph, name)
    gm.train(model.training)

    report = ConvertReport()
    for node in list(gm.graph.nodes):
        if node.op == "call_function":
            if node.target in _FUSED_FUNCTIONS or node.target in _NO_EQUIVALENT_FUNCTIONS:
                if node.target in _FUSED_FUNCTIONS:
                    report.already_fused.append(_node_where(node))
                else:
                    report.left.append(
                        Left((_node_where(node),), _fn_name(node.target), _NO_EQUIVALENT_FUNCTIONS[node.target], "call")
                    )
                continue
            entry = _FUNCTIONS.get(node.target) if _hashable(node.target) else None
            if entry is None:
                continue
            act, pnames, inplace_variant = entry
            what = _fn_name(node.target)
        elif node.op == "call_method" and node.target in _METHODS:
            act, inplace_variant = _METHODS[node.target]
            pnames = ()
            what = f"Tensor.{node.target}"
        else:
            continue
        where = _node_where(node)
        spec = ACTIVATIONS[act]
        try:
            x, vals, inpl = _bind(pnames, inplace_variant, node.args, node.kwargs)
        except TypeError:
            report.left.append(Left((where,), what, "call does not match torch's signature", "call"))
            continue
        if any(isinstance(v, fx.Node) for v in vals.values()) or not isinstance(x, fx.Node):
            report.left.append(Left((where,), what, "parameter computed at run time (not a constant)", "call"))
            continue
        why = _selected(include, exclude, (where,), node.target, spec)
        # A predicate or class-name selector sees the torch function; a name matches the activation.
        if why:
            report.left.append(Left((where,), what, why, "call"))
            continue
        inpl = inpl and keep_inplace
        if target is not None:
            fn, kwargs, new = getattr(_ffn, target.spec.name), dict(target.params), f"fused_act.{target.spec.name}"
        else:
            fn, kwargs, new = getattr(_ffn, act), dict(vals), f"fused_act.{act}"
        if inpl:
            kwargs["inplace"] = True
        with gm.graph.inserting_after(node):
            repl = gm.graph.call_function(fn, (x,), kwargs)
        repl.meta = dict(node.meta)
        node.replace_all_uses_with(repl)
        gm.graph.erase_node(node)
        desc_args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        report.replaced.append(
            Replaced(
                (where,),
                what + (f"({', '.join(f'{k}={v!r}' for k, v in vals.items())})" if vals else ""),
                f"{new}({desc_args})",
                "call",
            )
        )
    if fold:
        _fold_graph(gm, include, exclude, report)
    gm.graph.lint()
    gm.recompile()
    if not report.replaced and not report.left:
        report.notes.append("convert_functional: no functional activation calls in the traced forward")
    return gm, report
