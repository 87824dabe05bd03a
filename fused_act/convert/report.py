"""What a conversion did: the report dataclasses and how they name modules, functions and fx nodes."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch.fx as fx
from torch import nn


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


def _place(names: tuple[str, ...], kind: str, text: str) -> str:
    """One line of the report: where, what, and how it was found unless it is a module."""
    return f"  {', '.join(names) or '<model>'}: {text}" + ("" if kind == "module" else f"  [{kind}]")


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
            lines += [_place(r.names, r.kind, f"{r.old} -> {r.new}") for r in self.replaced]
        if self.left:
            lines.append(f"left {len(self.left)}:")
            lines += [_place(r.names, r.kind, f"{r.what}: {r.reason}") for r in self.left]
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


def _describe(m: nn.Module) -> str:
    extra = m.extra_repr()
    return f"{type(m).__module__.split('.')[0]}.{type(m).__name__}({extra})".replace("torch.", "nn.")


def _fn_name(fn) -> str:
    mod = getattr(fn, "__module__", None) or ""
    mod = {"torch.nn.functional": "F", "torch._C._nn": "F", "torch._C._VariableFunctions": "torch"}.get(mod, mod)
    return f"{mod}.{getattr(fn, '__name__', repr(fn))}" if mod else getattr(fn, "__name__", repr(fn))


def _node_where(node: fx.Node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    path = list(stack)[-1] if stack else ""
    path = path if isinstance(path, str) else ""
    return f"{path}:{node.name}" if path else node.name
