"""Folding ``Linear/Conv2d -> activation`` into one ``fused_act.nn.Linear`` / ``Conv2d`` with that
activation: adjacent children of an ``nn.Sequential`` (``convert``) and ``act(self.fc(x))`` in a
traced graph (``convert_functional``); and ``BatchNorm -> activation`` into one
``fused_act.nn.BatchNorm1d/2d/3d`` (adjacent children of an ``nn.Sequential``)."""

from __future__ import annotations

import torch.fx as fx
from torch import nn

from .. import nn as _fnn
from ..registry import ActivationSpec, get
from .report import ConvertReport, Left, Replaced, _describe, _node_where
from .selection import _has_hooks, _selected
from .tables import _FUSED_FUNCTIONS, _fused_params, _fused_spec, _hashable

# Exact types: a subclass may change forward (MultiheadAttention's out_proj is one).
_FOLDABLE = (nn.Linear, nn.Conv2d)
_NORMS = {nn.BatchNorm1d: _fnn.BatchNorm1d, nn.BatchNorm2d: _fnn.BatchNorm2d, nn.BatchNorm3d: _fnn.BatchNorm3d}


def _foldable_layer(m) -> str | None:
    """None if the Linear/Conv2d/BatchNorm ``m`` can absorb the activation after it, else why not."""
    if type(m) in _FOLDABLE and m.bias is None:
        return "has no bias: nothing to fuse into the activation"
    if _has_hooks(m):
        return "has hooks registered on it (they would be lost)"
    return None


def _activation_of(m) -> tuple[ActivationSpec, dict] | None:
    """(spec, params) of a fused activation module that folding may absorb, else None."""
    spec = _fused_spec(m)
    if spec is None or _has_hooks(m) or getattr(m, "memory", "auto") != "auto":
        return None  # a chosen memory mode is the activation's own; bias_act saves what it needs
    return spec, _fused_params(m, spec)


def _folded(layer: nn.Module, spec: ActivationSpec, params: dict) -> nn.Module:
    """``layer`` as a fused_act.nn.Linear/Conv2d with ``spec``: built on the meta device (no
    initialisation work), then given ``layer``'s own Parameter objects, so optimisers and tied
    weights keep pointing at them (and a batch norm its own buffers)."""
    if type(layer) in _NORMS:
        new = _NORMS[type(layer)](
            layer.num_features,
            layer.eps,
            layer.momentum,
            layer.affine,
            layer.track_running_stats,
            device="meta",
            activation=spec.name,
            **params,
        )
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            setattr(new, name, getattr(layer, name))
        return new.train(layer.training)
    if type(layer) is nn.Linear:
        new = _fnn.Linear(
            layer.in_features,
            layer.out_features,
            True,
            device="meta",
            dtype=layer.weight.dtype,
            activation=spec.name,
            **params,
        )
    else:
        new = _fnn.Conv2d(
            layer.in_channels,
            layer.out_channels,
            layer.kernel_size,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
            True,
            layer.padding_mode,
            device="meta",
            dtype=layer.weight.dtype,
            activation=spec.name,
            **params,
        )
    new.weight, new.bias = layer.weight, layer.bias
    return new.train(layer.training)


def _fold_sequential(model: nn.Module, include, exclude, report: ConvertReport, layers: tuple[type, ...]) -> None:
    """Folds ``layer -> activation`` pairs, ``layer`` of one of the exact types ``layers``
    (``_FOLDABLE``, ``_NORMS``), that are adjacent in an ``nn.Sequential`` (whose forward feeds
    each child's output only to the next child) into one fused layer.

    The activation's slot gets an ``nn.Identity``, so the indices and ``state_dict`` keys of
    later children do not move. A pair is skipped when either module is registered anywhere
    else (a shared module may be used without its partner), has hooks, or the activation has a
    memory mode of its own; the activation then stays a separate (fused) module."""
    paths: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        paths.setdefault(id(m), []).append(name)
    for seq in list(model.modules()):  # each module once, shared ones included
        if not isinstance(seq, nn.Sequential) or type(seq).forward is not nn.Sequential.forward:
            continue
        keys = [k for k, c in seq._modules.items() if c is not None]
        for k_layer, k_act in zip(keys, keys[1:]):
            layer, act = seq._modules[k_layer], seq._modules[k_act]
            found = _activation_of(act)
            if found is None or type(layer) not in layers:
                continue
            spec, params = found
            names = (*paths[id(layer)], *paths[id(act)])
            why = (
                _foldable_layer(layer)
                or ("registered under several names" if len(paths[id(layer)]) + len(paths[id(act)]) > 2 else None)
                or _selected(include, exclude, tuple(paths[id(act)]), act, spec)
            )
            if why:
                report.left.append(Left(names, f"{_describe(layer)} + {_describe(act)}", f"not folded: {why}", "fold"))
                continue
            new = _folded(layer, spec, params)
            seq._modules[k_layer], seq._modules[k_act] = new, nn.Identity().train(act.training)
            report.replaced.append(Replaced(names, f"{_describe(layer)} + {_describe(act)}", _describe(new), "fold"))


def _graph_activation(gm: fx.GraphModule, node: fx.Node) -> tuple[ActivationSpec, dict] | None:
    """(spec, params) if ``node`` applies a fused activation to its only input with constant
    parameters (what convert_functional writes, or a fused module), else None."""
    if node.op == "call_module":
        return _activation_of(gm.get_submodule(node.target))
    if node.op != "call_function" or not _hashable(node.target) or node.target not in _FUSED_FUNCTIONS:
        return None
    kwargs = dict(node.kwargs)
    name = _FUSED_FUNCTIONS[node.target] or kwargs.pop("name", None)
    kwargs.pop("inplace", None)
    if len(node.args) != 1 or not isinstance(name, str) or kwargs.get("memory", "auto") != "auto":
        return None
    kwargs.pop("memory", None)
    spec = get(name)
    if set(kwargs) - set(spec.params) or any(isinstance(v, fx.Node) for v in kwargs.values()):
        return None
    return spec, spec.resolve(kwargs)


def _fold_graph(gm: fx.GraphModule, include, exclude, report: ConvertReport) -> None:
    """``_fold_sequential`` for traced forwards: ``act(self.fc(x))`` with ``self.fc`` an
    nn.Linear/Conv2d called once in the graph, registered once, and read nowhere else (no
    ``get_attr`` of its weight), whose output nothing but the activation uses."""
    paths: dict[int, int] = {}
    for _, m in gm.named_modules(remove_duplicate=False):
        paths[id(m)] = paths.get(id(m), 0) + 1
    uses: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op in ("call_module", "get_attr"):
            owner = n.target if n.op == "call_module" else n.target.rpartition(".")[0]
            uses[owner] = uses.get(owner, 0) + 1
    for node in list(gm.graph.nodes):
        found = _graph_activation(gm, node)
        x = node.args[0] if node.args else None
        if found is None or not isinstance(x, fx.Node) or x.op != "call_module" or len(x.users) != 1:
            continue
        layer = gm.get_submodule(x.target)
        if type(layer) not in _FOLDABLE:
            continue
        spec, params = found
        where = (x.target, _node_where(node))
        why = (
            _foldable_layer(layer)
            or (
                "used more than once in forward or registered under several names"
                if uses.get(x.target, 0) != 1 or paths[id(layer)] != 1
                else None
            )
            or _selected(
                include,
                exclude,
                (where[1],),
                gm.get_submodule(node.target) if node.op == "call_module" else node.target,
                spec,
            )
        )
        if why:
            report.left.append(Left(where, f"{_describe(layer)} + {spec.name}", f"not folded: {why}", "fold"))
            continue
        new = _folded(layer, spec, params)
        gm.add_submodule(x.target, new)  # same path: state_dict keys unchanged
        node.replace_all_uses_with(x)
        gm.graph.erase_node(node)
        report.replaced.append(Replaced(where, f"{_describe(layer)} + {spec.name}", _describe(new), "fold"))
