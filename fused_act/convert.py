"""Drop fused activations into an existing model.

    model, report = fused_act.convert(model)                      # torch.nn activations -> fused
    print(report)                                                 # what was replaced, what was left and why
    model, report = fused_act.convert(model, to="leaky_tanh", a=0.25)   # every activation -> one choice

Two passes, for the two ways a model can hold an activation:

* ``convert`` swaps *modules*: every ``torch.nn`` activation module whose exact type is in the
  registry's table (``ActivationSpec.torch_module``) becomes the ``fused_act.nn`` module with the
  same parameters, ``inplace`` flag, training mode and module name. Fused modules hold no
  parameters or buffers, so ``state_dict`` is unchanged. It also swaps activation *functions*
  stored as module attributes (``nn.TransformerEncoderLayer(activation="gelu")`` keeps
  ``self.activation = F.gelu``) for the fused function.
* ``convert_functional`` rewrites activation *calls* inside ``forward`` (``F.relu(x)``,
  ``torch.tanh(x)``, ``x.sigmoid()``, ...) in a ``torch.fx`` graph; it needs a model that
  ``torch.fx.symbolic_trace`` can trace (no data-dependent Python control flow) and returns a
  ``GraphModule``. ``convert(model, functional=True)`` runs both.

Everything else is left alone and listed in the report with the reason.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from . import functional as _ffn
from . import nn as _fnn
from .registry import ACTIVATIONS, ActivationSpec, get

__all__ = ["convert", "convert_functional", "ConvertReport", "Replaced", "Left"]

# A selector for include / exclude: an activation name ("relu"), a class name ("ReLU"), a
# module-name pattern ("layer1.*"), a class, or a predicate (qualified_name, module) -> bool.
Selector = str | type | Callable[[str, Any], bool]

# torch.nn class -> spec. Exact types only: nn.ReLU6 subclasses nn.Hardtanh, and a user's
# subclass of nn.ReLU may override forward, so isinstance would convert the wrong thing.
_TORCH_MODULES: dict[type, ActivationSpec] = {
    getattr(nn, s.torch_module): s for s in ACTIVATIONS.values() if s.torch_module
}
_FUSED_MODULES: dict[type, ActivationSpec] = {getattr(_fnn, s.module): s for s in ACTIVATIONS.values()}

# torch.nn activation-family modules with no fused equivalent, reported rather than ignored.
_NO_EQUIVALENT: dict[type, str] = {
    nn.PReLU: "learnable slope (a parameter); no fused kernel",
    nn.RReLU: "random slope in training; no fused kernel",
    nn.Threshold: "no fused kernel",
    nn.Tanhshrink: "no fused kernel",
    nn.Softshrink: "no fused kernel",
    nn.Hardshrink: "no fused kernel",
    nn.GLU: "not elementwise (gates one half of a dimension with the other)",
    nn.Softmax: "not elementwise (normalises over a dimension)",
    nn.Softmin: "not elementwise (normalises over a dimension)",
    nn.LogSoftmax: "not elementwise (normalises over a dimension)",
    nn.Softmax2d: "not elementwise (normalises over a dimension)",
}


# ------------------------------------------------------------------ report


@dataclass
class Replaced:
    """One module (or attribute, or call) that was replaced. ``names`` holds every qualified
    name it is reachable under: a module shared by several parents is one entry."""

    names: tuple[str, ...]
    old: str
    new: str
    kind: str = "module"  # "module", "attribute" (a function held by a module) or "call" (fx node)


@dataclass
class Left:
    """An activation that was found but not replaced, and why."""

    names: tuple[str, ...]
    what: str
    reason: str
    kind: str = "module"


@dataclass
class ConvertReport:
    """What ``convert`` / ``convert_functional`` did. ``str(report)`` is a readable summary;
    ``report.to_dict()`` is JSON-serialisable."""

    replaced: list[Replaced] = field(default_factory=list)
    left: list[Left] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    already_fused: list[str] = field(default_factory=list)  # qualified names of fused_act modules found

    @property
    def changed(self) -> bool:
        return bool(self.replaced)

    @property
    def replaced_names(self) -> list[str]:
        """Every qualified name (or fx node name) that now runs a fused activation."""
        return [n for r in self.replaced for n in r.names]

    def to_dict(self) -> dict:
        return {
            "replaced": [vars(r) | {"names": list(r.names)} for r in self.replaced],
            "left": [vars(r) | {"names": list(r.names)} for r in self.left],
            "notes": list(self.notes),
            "already_fused": list(self.already_fused),
        }

    def __str__(self) -> str:
        lines = []
        if not self.replaced:
            lines.append(
                "fused_act.convert: nothing converted"
                + ("" if self.left or self.already_fused else ": no activations found")
                + "."
            )
        else:
            n = len(self.replaced_names)
            lines.append(f"fused_act.convert: replaced {len(self.replaced)} activation(s) at {n} place(s):")
            for r in self.replaced:
                lines.append(
                    f"  {', '.join(r.names) or '<model>'}: {r.old} -> {r.new}"
                    + ("" if r.kind == "module" else f"  [{r.kind}]")
                )
        if self.left:
            lines.append(f"left {len(self.left)}:")
            for r in self.left:
                lines.append(
                    f"  {', '.join(r.names) or '<model>'}: {r.what}: {r.reason}"
                    + ("" if r.kind == "module" else f"  [{r.kind}]")
                )
        if self.already_fused:
            lines.append(f"already fused_act, left as is: {len(self.already_fused)} module(s)")
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def _merge(self, other: ConvertReport) -> ConvertReport:
        return ConvertReport(
            self.replaced + other.replaced,
            self.left + other.left,
            self.notes + other.notes,
            self.already_fused + other.already_fused,
        )


# ------------------------------------------------------------------ selection


def _as_list(sel) -> list | None:
    if sel is None:
        return None
    if isinstance(sel, (str, type)) or (callable(sel) and not isinstance(sel, Iterable)):
        return [sel]
    return list(sel)


def _matches(selectors: list, names: tuple[str, ...], obj: Any, spec: ActivationSpec | None) -> bool:
    cls = obj if isinstance(obj, type) else type(obj)
    for s in selectors:
        if isinstance(s, type):
            if cls is s:
                return True
        elif isinstance(s, str):
            if (
                (spec is not None and s == spec.name)
                or s == getattr(cls, "__name__", None)
                or any(fnmatch.fnmatchcase(n, s) for n in names)
            ):
                return True
        elif callable(s):
            if any(s(n, obj) for n in names):
                return True
        else:
            raise TypeError(
                f"fused_act.convert: include/exclude entries must be a name, a pattern, a class "
                f"or a callable (name, module) -> bool; got {s!r}"
            )
    return False


def _selected(include, exclude, names, obj, spec) -> str | None:
    """None if selected, else the reason it is not."""
    if include is not None and not _matches(include, names, obj, spec):
        return "not matched by include"
    if exclude is not None and _matches(exclude, names, obj, spec):
        return "matched by exclude"
    return None


# ------------------------------------------------------------------ targets


@dataclass(frozen=True)
class _Target:
    """The activation every selected activation becomes when ``to=`` is given."""

    spec: ActivationSpec
    params: dict

    @classmethod
    def make(cls, to: str, params: dict) -> _Target:
        spec = get(to)  # unknown name -> ValueError listing the known ones
        resolved = spec.resolve(params)  # unknown parameter -> TypeError
        spec.kernel_args(resolved)  # bad value (gelu approximate) -> ValueError
        return cls(spec, resolved)

    def module(self, inplace: bool) -> nn.Module:
        cls = getattr(_fnn, self.spec.module)
        if self.spec.torch_inplace:
            return cls(**self.params, inplace=inplace)
        if inplace:  # the named class takes no inplace flag (LeakyTanh, ...); the generic one does
            return _fnn.Activation(self.spec.name, inplace=True, **self.params)
        return cls(**self.params)

    def function(self) -> Callable:
        return functools.partial(_ffn.activation, name=self.spec.name, **self.params)

    def same_as(self, spec: ActivationSpec, params: dict) -> bool:
        return spec is self.spec and all(params.get(k) == v for k, v in self.params.items())


def _fused_spec(m: nn.Module) -> ActivationSpec | None:
    """The spec of a fused_act activation module, else None."""
    return _FUSED_MODULES.get(type(m)) or (get(m.name) if type(m) is _fnn.Activation else None)


def _fused_params(m: nn.Module, spec: ActivationSpec) -> dict:
    if isinstance(m, _fnn.Activation):
        return dict(m.params)
    return {n: getattr(m, n) for n in spec.params}


def _fused_equivalent(m: nn.Module, spec: ActivationSpec) -> nn.Module:
    """The fused module for torch module m, with its parameters and inplace flag."""
    params = {n: getattr(m, n) for n in spec.params}
    if spec.torch_inplace:
        params["inplace"] = bool(getattr(m, "inplace", False))
    return getattr(_fnn, spec.module)(**params)


def _describe(m: nn.Module) -> str:
    extra = m.extra_repr()
    return f"{type(m).__module__.split('.')[0]}.{type(m).__name__}({extra})".replace("torch.", "nn.")


def _has_hooks(m: nn.Module) -> bool:
    return any(
        getattr(m, a, None)
        for a in (
            "_forward_hooks",
            "_forward_pre_hooks",
            "_backward_hooks",
            "_backward_pre_hooks",
            "_state_dict_hooks",
            "_load_state_dict_pre_hooks",
        )
    )


# ------------------------------------------------------------------ functional activations
# torch function -> (activation, its torch parameter names, whether it is the in-place variant).
# Used for function-valued attributes (convert) and call_function nodes (convert_functional).


def _torch_function(dotted: str):
    """``"torch.x"`` / ``"F.x"`` -> the function, or None on a torch version without it."""
    module, _, name = dotted.partition(".")
    return getattr({"torch": torch, "F": F}[module], name, None)


def _functional_table() -> dict[Callable, tuple[str, tuple[str, ...], bool]]:
    """From the registry's ``torch_functions`` / ``torch_inplace_functions``."""
    table = {}
    for spec in ACTIVATIONS.values():
        for names, inplace_variant in ((spec.torch_functions, False), (spec.torch_inplace_functions, True)):
            for fn in filter(None, map(_torch_function, names)):
                table[fn] = (spec.name, tuple(spec.params), inplace_variant)
    return table


_FUNCTIONS = _functional_table()
# Tensor methods (call_method nodes): name -> (activation, in-place variant)
_METHODS = {
    method: (spec.name, inplace_variant)
    for spec in ACTIVATIONS.values()
    for methods, inplace_variant in ((spec.torch_methods, False), (spec.torch_inplace_methods, True))
    for method in methods
}
# Activation-family functions with no fused kernel: reported by convert_functional.
_NO_EQUIVALENT_FUNCTIONS = {
    F.prelu: "learnable slope; no fused kernel",
    F.rrelu: "random slope in training; no fused kernel",
    F.glu: "not elementwise",
    F.threshold: "no fused kernel",
    F.tanhshrink: "no fused kernel",
    F.softshrink: "no fused kernel",
    F.hardshrink: "no fused kernel",
}
_FUSED_FUNCTIONS = {getattr(_ffn, n): n for n in ACTIVATIONS} | {_ffn.activation: None}


def _fn_name(fn) -> str:
    mod = getattr(fn, "__module__", None) or ""
    mod = {"torch.nn.functional": "F", "torch._C._nn": "F", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{mod}.{getattr(fn, '__name__', repr(fn))}" if mod else getattr(fn, "__name__", repr(fn))


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


# ------------------------------------------------------------------ convert


def convert(
    model: nn.Module,
    include: Selector | Iterable[Selector] | None = None,
    exclude: Selector | Iterable[Selector] | None = None,
    inplace: bool = True,
    *,
    to: str | None = None,
    functional: bool = False,
    keep_inplace: bool = True,
    fold: bool = True,
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
            ``_fold_sequential``; with ``functional=True`` also in the traced graph).

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
        elif cls in (_fnn.Linear, _fnn.Conv2d) and m.activation != "identity":
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

    if fold:
        _fold_sequential(model, include, exclude, report)
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


# ------------------------------------------------------------------ folding Linear/Conv2d + activation


# Exact types: a subclass may change forward (MultiheadAttention's out_proj is one).
_FOLDABLE = (nn.Linear, nn.Conv2d)


def _foldable_layer(m) -> str | None:
    """None if the Linear/Conv2d ``m`` can absorb the activation after it, else why not."""
    if m.bias is None:
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
    weights keep pointing at them."""
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


def _fold_sequential(model: nn.Module, include, exclude, report: ConvertReport) -> None:
    """Folds ``Linear/Conv2d -> activation`` pairs that are adjacent in an ``nn.Sequential``
    (whose forward feeds each child's output only to the next child) into one fused layer.

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
            if found is None or type(layer) not in _FOLDABLE:
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


def _transformer_note(modules, report: ConvertReport) -> None:
    layers = [m for m in modules if isinstance(m, (nn.TransformerEncoderLayer,))]
    if layers and report.changed:
        report.notes.append(
            "nn.TransformerEncoderLayer has an inference fast path (eval mode, no autograd, batch_first, ...) "
            "that runs torch's own fused kernel with relu/gelu and bypasses the activation; the converted "
            "activation runs in training and whenever the fast path does not apply"
        )


# ------------------------------------------------------------------ convert_functional


class _Tracer(fx.Tracer):
    """symbolic_trace, with fused_act modules and functions kept as single nodes: tracing into
    them would hit the in-place branch (``x.requires_grad`` on a Proxy)."""

    def __init__(self):
        super().__init__(autowrap_functions=tuple(_FUSED_FUNCTIONS))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in _FUSED_MODULES or isinstance(m, _fnn.Activation) or super().is_leaf_module(m, qualname)


def _node_where(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack)[-1] if stack else ""
    path = path if isinstance(path, str) else ""
    return f"{path}:{node.name}" if path else node.name


def convert_functional(
    model: nn.Module,
    include: Selector | Iterable[Selector] | None = None,
    exclude: Selector | Iterable[Selector] | None = None,
    *,
    to: str | None = None,
    keep_inplace: bool = True,
    fold: bool = True,
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
    With ``fold`` (default), a ``nn.Linear`` / ``nn.Conv2d`` call whose output only feeds a fused
    activation becomes one ``fused_act.nn.Linear`` / ``Conv2d`` call (``_fold_graph``).

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


def _hashable(x) -> bool:
    try:
        hash(x)
        return True
    except TypeError:
        return False
