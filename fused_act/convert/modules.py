"""``convert``: swaps torch.nn activation modules (and activation functions held as module
attributes) for fused_act ones, then folds and, with ``functional=True``, rewrites calls."""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn

from .. import functional as _ffn
from .. import nn as _fnn
from ..registry import ACTIVATIONS, ActivationSpec, get
from .fold import _FOLDABLE, _NORMS, _fold_sequential
from .fx_rewrite import convert_functional
from .report import ConvertReport, Left, Replaced, _describe, _fn_name
from .selection import Selector, _as_list, _has_hooks, _selected
from .tables import _FUNCTIONS, _NO_EQUIVALENT, _TORCH_MODULES, _fused_params, _fused_spec
from .target import _Target

# fused layers that carry an activation (what folding makes)
_FOLDED = (_fnn.Linear, _fnn.Conv2d, *_NORMS.values())


def convert(
    model: nn.Module,
    include: Selector | Iterable[Selector] | None = None,
    exclude: Selector | Iterable[Selector] | None = None,
    inplace: bool = True,
    *,
    to: str | None = None,
    functional: bool = False,
    keep_inplace: bool = True,
    fold: bool = False,
    fold_norm: bool = False,
    **params,
) -> tuple[nn.Module, ConvertReport]:
    """Replaces the activations of ``model`` with fused_act ones; returns ``(model, report)``.

    Args:
        model: any ``nn.Module`` (nested modules, ``Sequential``, ``ModuleList``/``ModuleDict``,
            shared submodules, train or eval mode). A model that is itself an activation module
            is returned as its replacement.
        include / exclude: which activations to touch. Each is one selector or a list of them; a
            selector is an activation name (``"relu"``), a class name (``"ReLU"``), an ``fnmatch``
            pattern on the qualified module name (``"layer4.*"``), a class (``nn.ReLU``), or a
            predicate ``f(qualified_name, module) -> bool``. include=None means everything.
        inplace: modify ``model`` itself (True, like ``torch.ao.quantization.convert``) or a
            ``copy.deepcopy`` of it (False). This is not the activations' ``inplace`` flag, which
            is kept as it was (see keep_inplace).
        to: replace every selected activation (torch's and already-fused ones) with this one,
            e.g. ``to="leaky_tanh", a=0.25``; ``**params`` are its parameters (registry defaults
            otherwise). Unknown names raise ValueError, unknown parameters TypeError.
        functional: also rewrite functional calls in ``forward`` with ``convert_functional``
            (the result is then a ``torch.fx.GraphModule``).
        keep_inplace: keep each activation's ``inplace=True``. False makes every replacement out
            of place (for tools that cannot handle the in-place path; torch's own modules are
            then not equivalent memory-wise, but numerically the same).
        fold: fold an ``nn.Linear`` / ``nn.Conv2d`` with a bias that a ``Sequential`` runs right
            before a (converted) activation into ``fused_act.nn.Linear`` / ``Conv2d`` with that
            ``activation``, and put an ``nn.Identity`` where the activation was (see
            ``_fold_sequential``; with ``functional=True`` also in the traced graph). Off by
            default: eager's ``addmm`` adds the bias inside the matrix product, and the folded
            layer's bias-free product ran slower than it here (docs/convert.md, "Folding").
        fold_norm: fold an ``nn.BatchNorm1d/2d/3d`` that a ``Sequential`` runs right before a
            (converted) activation into ``fused_act.nn.BatchNorm1d/2d/3d`` with that
            ``activation`` (the same parameters and buffers), and put an ``nn.Identity`` where the
            activation was: batch norm's output then never reaches memory. Off by default: it
            pays on large feature maps, but on mobilenet_v3_small's small ones (batch 8, 64 x 64
            images) a training step was not faster (docs/convert.md, "Folding batch norm").

    Module names, parameters, buffers and ``state_dict`` keys are unchanged: fused modules
    hold no state, so checkpoints load into the converted model and vice versa.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fused_act.convert: expected an nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        raise TypeError(
            "fused_act.convert: TorchScript modules cannot be converted (their code is compiled); "
            "convert the eager model instead"
        )
    target = _Target.make(to, params) if to is not None else None
    if to is None and params:
        raise TypeError(f"fused_act.convert: parameters {sorted(params)} given without to=")
    include, exclude = _as_list(include), _as_list(exclude)
    if not inplace:
        model = copy.deepcopy(model)

    report = ConvertReport()
    # Every path to every module: a shared module is visited once but renamed everywhere.
    names: dict[int, list[str]] = {}
    objs: dict[int, nn.Module] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        names.setdefault(id(m), []).append(name)
        objs[id(m)] = m

    new: dict[int, nn.Module] = {}
    for key, m in objs.items():
        qn = tuple(names[key])
        cls = type(m)
        spec = _TORCH_MODULES.get(cls)
        fused_spec = _fused_spec(m)
        if spec is not None:
            why = _selected(include, exclude, qn, m, spec)
            if why is None and _has_hooks(m):
                why = "has hooks registered on it (they would be lost)"
            if why:
                report.left.append(Left(qn, _describe(m), why))
                continue
            inpl = bool(getattr(m, "inplace", False)) and keep_inplace
            repl = target.module(inpl) if target else _fused_equivalent(m, spec)
            if not keep_inplace and hasattr(repl, "inplace"):
                repl.inplace = False
        elif fused_spec is not None:
            # Converting twice is harmless: fused modules are left, unless to= asks for another
            # activation (then they are swapped too, so convert(m, to=a) then to=b works).
            inpl = bool(getattr(m, "inplace", False))
            if target is None or target.same_as(fused_spec, _fused_params(m, fused_spec)):
                if keep_inplace or not inpl:
                    report.already_fused.extend(qn)  # already what was asked
                    continue
                repl = copy.copy(m)
                repl.inplace = False
            else:
                why = _selected(include, exclude, qn, m, fused_spec)
                if why:
                    report.left.append(Left(qn, _describe(m), why))
                    continue
                repl = target.module(inpl and keep_inplace)
        elif cls in _FOLDED and m.activation != "identity":
            # A folded layer (from an earlier convert, or built so): to= changes its activation.
            spec_m = get(m.activation)
            if target is None or target.same_as(spec_m, m.activation_params):
                report.already_fused.extend(qn)
            elif why := _selected(include, exclude, qn, m, spec_m):
                report.left.append(Left(qn, _describe(m), why))
            else:
                old = _describe(m)
                m._set_activation(target.spec.name, target.params)
                report.replaced.append(Replaced(qn, old, _describe(m)))
            continue
        elif cls in _NO_EQUIVALENT:
            report.left.append(Left(qn, _describe(m), _NO_EQUIVALENT[cls]))
            continue
        elif any(isinstance(m, t) for t in _TORCH_MODULES):
            base = next(t for t in cls.__mro__ if t in _TORCH_MODULES)
            report.left.append(
                Left(
                    qn,
                    _describe(m),
                    f"subclass of nn.{base.__name__}: its forward may differ; "
                    "include it by converting the base class yourself",
                )
            )
            continue
        else:
            _convert_attributes(m, qn, target, include, exclude, report)
            continue
        repl.train(m.training)
        new[key] = repl
        report.replaced.append(Replaced(qn, _describe(m), _describe(repl)))

    # Swap in the parents' _modules dicts: this keeps names and order for Sequential,
    # ModuleList and ModuleDict, and replaces a shared module everywhere it is registered.
    for m in objs.values():
        for child_name, child in m._modules.items():
            if child is not None and id(child) in new:
                m._modules[child_name] = new[id(child)]
    if id(model) in new:
        model = new[id(model)]

    layers = (_FOLDABLE if fold else ()) + (tuple(_NORMS) if fold_norm else ())
    if layers:
        _fold_sequential(model, include, exclude, report, layers)
    _transformer_note(objs.values(), report)
    if functional:
        model, freport = convert_functional(
            model, include, exclude, to=to, keep_inplace=keep_inplace, fold=fold, **params
        )
        report = report._merge(freport)
    return model, report


def _convert_attributes(m: nn.Module, qn: tuple[str, ...], target, include, exclude, report: ConvertReport) -> None:
    """Swaps activation functions held as plain attributes (``self.activation = F.gelu``), which
    module swapping cannot see; nn.TransformerEncoderLayer/DecoderLayer store them this way."""
    for attr, value in list(vars(m).items()):
        if attr.startswith("_") or not callable(value) or isinstance(value, (nn.Module, type)):
            continue
        try:
            entry = _FUNCTIONS.get(value)
        except TypeError:  # unhashable callable
            continue
        if entry is None:
            continue
        act, _, inplace_variant = entry
        spec = ACTIVATIONS[act]
        an = tuple(f"{n}.{attr}" if n else attr for n in qn)
        why = _selected(include, exclude, an, value, spec)
        if why is None and inplace_variant:
            why = "in-place function variant held as an attribute; left as is"
        if why:
            report.left.append(Left(an, _fn_name(value), why, "attribute"))
            continue
        # The fused function takes torch's parameter names, so self.activation(x, approximate=...)
        # and self.act(x, inplace=True) keep working.
        fn = target.function() if target else getattr(_ffn, act)
        setattr(m, attr, fn)
        new = f"fused_act.activation(name={target.spec.name!r}, {target.params})" if target else f"fused_act.{act}"
        report.replaced.append(Replaced(an, _fn_name(value), new, "attribute"))


def _fused_equivalent(m: nn.Module, spec: ActivationSpec) -> nn.Module:
    """The fused module for torch module m, with its parameters and inplace flag."""
    params = {n: getattr(m, n) for n in spec.params}
    if spec.torch_inplace:
        params["inplace"] = bool(getattr(m, "inplace", False))
    return getattr(_fnn, spec.module)(**params)


def _transformer_note(modules, report: ConvertReport) -> None:
    layers = [m for m in modules if isinstance(m, (nn.TransformerEncoderLayer,))]
    if layers and report.changed:
        report.notes.append(
            "nn.TransformerEncoderLayer has an inference fast path (eval mode, no autograd, batch_first, ...) "
            "that runs torch's own fused kernel with relu/gelu and bypasses the activation; the converted "
            "activation runs in training and whenever the fast path does not apply"
        )
