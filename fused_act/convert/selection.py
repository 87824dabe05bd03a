"""Which activations a conversion touches: the include / exclude selectors, and the hooks check
(a module with hooks is never replaced: its hooks would be lost)."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from typing import Any

from torch import nn

from ..registry import ActivationSpec

# A selector for include / exclude: an activation name ("relu"), a class name ("ReLU"), a
# module-name pattern ("layer1.*"), a class, or a predicate (qualified_name, module) -> bool.
Selector = str | type | Callable[[str, Any], bool]


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
