"""``to=``: the one activation every selected activation becomes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from .. import functional as _ffn
from .. import nn as _fnn
from ..registry import ActivationSpec, get


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
