"""The one Python list of activations.

Everything user-facing is generated from ``ACTIVATIONS``: the functions in
``fused_act.functional`` (re-exported as ``fused_act.<name>``), the modules in ``fused_act.nn``,
``convert()``'s table of torch modules, the tests and the benchmarks. The C++ list is
``csrc/activations/list.h``; ``tests/test_registry.py`` checks that the two agree.

Adding an activation: a functor in ``csrc/activations/act/<name>.h``, a line in
``csrc/activations/list.h`` and an entry here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["ActivationSpec", "ACTIVATIONS", "get"]


@dataclass(frozen=True)
class ActivationSpec:
    """One activation: its parameters and how it maps onto the C++ kernels.

    Attributes:
        name: public name (``fused_act.<name>``, ``Activation(name)``).
        params: parameter names with their defaults, in the order the kernel takes them.
        reference: the torch composition it must agree with, ``reference(x, **params)``
            (tests evaluate it in float64).
        module: class name in ``fused_act.nn``.
        torch_module: the ``torch.nn`` class it replaces (``convert``), or None.
        torch_inplace: whether that torch module takes ``inplace`` (ours then does too).
        kinks: points where the derivative jumps, ``kinks(**params)``; tests check torch's
            convention there and keep gradcheck away from them.
        source: where the function comes from.
        bounds: the output range of a bounded activation, ``bounds(**params) -> (low, high)``
            (train/metrics.py counts outputs near a bound as saturated), or None.
        test_params: parameter sets the tests run besides the defaults (sign changes, the
            other kernel of gelu, edge values).
        torch_functions, torch_inplace_functions: the torch functions computing it, as
            ``"torch.<name>"`` or ``"F.<name>"`` (torch.nn.functional), with the activation's
            parameter names as their own; ``convert`` swaps calls of them (names a torch version
            lacks are skipped).
        torch_methods, torch_inplace_methods: the Tensor methods computing it (``x.relu()``).
    """

    name: str
    params: dict[str, Any]
    reference: Callable[..., torch.Tensor]
    module: str
    torch_module: str | None = None
    torch_inplace: bool = False
    kinks: Callable[..., list[float]] = field(default=lambda **_: [])
    source: str = ""
    bounds: Callable[..., tuple[float, float]] | None = None
    test_params: tuple[dict[str, Any], ...] = ()
    torch_functions: tuple[str, ...] = ()
    torch_inplace_functions: tuple[str, ...] = ()
    torch_methods: tuple[str, ...] = ()
    torch_inplace_methods: tuple[str, ...] = ()

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; unknown names raise TypeError like a Python call would."""
        unknown = set(params) - set(self.params)
        if unknown:
            raise TypeError(
                f"fused_act.{self.name}: unexpected parameter(s) {sorted(unknown)}; "
                f"it takes {list(self.params) or 'none'}"
            )
        return {**self.params, **params}

    def kernel_args(self, params: dict[str, Any]) -> tuple[str, list[float]]:
        """(C++ kernel name, float parameters) for these parameters."""
        p = self.resolve(params)
        if self.name == "gelu":  # the only string parameter: it picks one of two kernels
            if p["approximate"] not in ("none", "tanh"):
                raise ValueError(f"fused_act.gelu: approximate must be 'none' or 'tanh', got {p['approximate']!r}")
            return ("gelu_tanh" if p["approximate"] == "tanh" else "gelu"), []
        return self.name, [float(v) for v in p.values()]

    @property
    def eager_ops(self) -> tuple[str, ...]:
        """The ATen operators eager PyTorch runs for one forward of ``reference`` at the default
        parameters: one for an activation ATen has a kernel for, several for a composition (whose
        intermediates each cross memory, the case a fused kernel wins most; the benchmarks' 'composite'
        targets). Counted, not stated, so it follows torch's own definitions."""
        return _eager_ops(self.name)

    @property
    def composite(self) -> bool:
        return len(self.eager_ops) > 1


def _specs() -> list[ActivationSpec]:
    S = ActivationSpec
    return [
        # classics
        S("identity", {}, lambda x: x.clone(), "Identity", None, False, source="nn.Identity"),
        S(
            "sigmoid",
            {},
            torch.sigmoid,
            "Sigmoid",
            "Sigmoid",
            bounds=lambda: (0.0, 1.0),
            torch_functions=("torch.sigmoid", "F.sigmoid"),
            torch_inplace_functions=("torch.sigmoid_",),
            torch_methods=("sigmoid",),
            torch_inplace_methods=("sigmoid_",),
        ),
        S(
            "tanh",
            {},
            torch.tanh,
            "Tanh",
            "Tanh",
            bounds=lambda: (-1.0, 1.0),
            torch_functions=("torch.tanh", "F.tanh"),
            torch_inplace_functions=("torch.tanh_",),
            torch_methods=("tanh",),
            torch_inplace_methods=("tanh_",),
        ),
        S(
            "relu",
            {},
            F.relu,
            "ReLU",
            "ReLU",
            True,
            lambda: [0.0],
            torch_functions=("F.relu", "torch.relu"),
            torch_inplace_functions=("F.relu_", "torch.relu_"),
            torch_methods=("relu",),
            torch_inplace_methods=("relu_",),
        ),
        S(
            "leaky_relu",
            {"negative_slope": 0.01},
            lambda x, negative_slope: F.leaky_relu(x, negative_slope),
            "LeakyReLU",
            "LeakyReLU",
            True,
            lambda negative_slope: [0.0],
            "Maas et al. 2013",
            test_params=({"negative_slope": 0.2}, {"negative_slope": -0.3}),
            torch_functions=("F.leaky_relu",),
            torch_inplace_functions=("F.leaky_relu_",),
        ),
        S(
            "elu",
            {"alpha": 1.0},
            lambda x, alpha: F.elu(x, alpha),
            "ELU",
            "ELU",
            True,
            lambda alpha: [0.0],
            "Clevert et al. 2015",
            test_params=({"alpha": 0.5}, {"alpha": -0.7}, {"alpha": 0.0}),
            torch_functions=("F.elu",),
            torch_inplace_functions=("F.elu_", "torch.elu_"),
        ),
        S(
            "softsign",
            {},
            F.softsign,
            "Softsign",
            "Softsign",
            source="Turian et al. 2009",
            bounds=lambda: (-1.0, 1.0),
            torch_functions=("F.softsign",),
        ),
        # Xu, Huang, Li 2016, "Revise Saturated Activation Functions"
        S(
            "rescaled_sigmoid",
            {},
            lambda x: 4 * torch.sigmoid(x) - 2,
            "RescaledSigmoid",
            source="Xu et al. 2016 (sigmoid*)",
            bounds=lambda: (-2.0, 2.0),
        ),
        S(
            "leaky_tanh",
            {"a": 0.25},
            lambda x, a: torch.where(x >= 0, torch.tanh(x), a * torch.tanh(x)),
            "LeakyTanh",
            kinks=lambda a: [0.0],
            source="Xu et al. 2016",
            bounds=lambda a: (-a, 1.0),
            test_params=({"a": 0.0}, {"a": 1.5}),
        ),
        # modern
        S(
            "gelu",
            {"approximate": "none"},
            lambda x, approximate: F.gelu(x, approximate=approximate),
            "GELU",
            "GELU",
            source="Hendrycks & Gimpel 2016",
            test_params=({"approximate": "tanh"},),
            torch_functions=("F.gelu",),
        ),
        S("silu", {}, F.silu, "SiLU", "SiLU", True, source="Elfwing et al. 2017", torch_functions=("F.silu",)),
        S("mish", {}, F.mish, "Mish", "Mish", True, source="Misra 2019", torch_functions=("F.mish",)),
        S(
            "selu",
            {},
            F.selu,
            "SELU",
            "SELU",
            True,
            lambda: [0.0],
            "Klambauer et al. 2017",
            torch_functions=("F.selu", "torch.selu"),
            torch_inplace_functions=("F.selu_", "torch.selu_"),
        ),
        S(
            "celu",
            {"alpha": 1.0},
            lambda x, alpha: F.celu(x, alpha),
            "CELU",
            "CELU",
            True,
            lambda alpha: [0.0],
            "Barron 2017",
            test_params=({"alpha": 2.0}, {"alpha": 0.5}, {"alpha": -1.5}),
            torch_functions=("F.celu", "torch.celu"),
            torch_inplace_functions=("F.celu_", "torch.celu_"),
        ),
        S(
            "softplus",
            {"beta": 1.0, "threshold": 20.0},
            lambda x, beta, threshold: F.softplus(x, beta, threshold),
            "Softplus",
            "Softplus",
            False,
            lambda beta, threshold: [threshold / beta],
            test_params=({"beta": 2.0, "threshold": 5.0}, {"beta": 0.5, "threshold": 100.0}),
            torch_functions=("F.softplus",),
        ),
        S(
            "hardtanh",
            {"min_val": -1.0, "max_val": 1.0},
            lambda x, min_val, max_val: F.hardtanh(x, min_val, max_val),
            "Hardtanh",
            "Hardtanh",
            True,
            lambda min_val, max_val: [min_val, max_val],
            bounds=lambda min_val, max_val: (min_val, max_val),
            test_params=({"min_val": -2.0, "max_val": 0.5}, {"min_val": 1.0, "max_val": 1.0}),
            torch_functions=("F.hardtanh",),
            torch_inplace_functions=("F.hardtanh_",),
        ),
        S(
            "relu6",
            {},
            F.relu6,
            "ReLU6",
            "ReLU6",
            True,
            lambda: [0.0, 6.0],
            bounds=lambda: (0.0, 6.0),
            torch_functions=("F.relu6",),
        ),
        S(
            "hardsigmoid",
            {},
            F.hardsigmoid,
            "Hardsigmoid",
            "Hardsigmoid",
            True,
            lambda: [-3.0, 3.0],
            bounds=lambda: (0.0, 1.0),
            torch_functions=("F.hardsigmoid",),
        ),
        S(
            "hardswish",
            {},
            F.hardswish,
            "Hardswish",
            "Hardswish",
            True,
            lambda: [-3.0, 3.0],
            "Howard et al. 2019",
            torch_functions=("F.hardswish",),
        ),
        S("logsigmoid", {}, F.logsigmoid, "LogSigmoid", "LogSigmoid", torch_functions=("F.logsigmoid",)),
        S(
            "squared_relu",
            {},
            lambda x: F.relu(x) ** 2,
            "SquaredReLU",
            kinks=lambda: [0.0],
            source="So et al. 2021 (Primer)",
        ),
    ]


ACTIVATIONS: dict[str, ActivationSpec] = {s.name: s for s in _specs()}
# (kernel, parameters) of every activation at its default parameters: the common call.
_DEFAULT_KERNEL_ARGS = {name: spec.kernel_args({}) for name, spec in ACTIVATIONS.items()}


@functools.cache
def _eager_ops(name: str) -> tuple[str, ...]:
    from torch.utils._python_dispatch import TorchDispatchMode

    ops: list[str] = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            ops.append(str(func.overloadpacket.__name__))
            return func(*args, **(kwargs or {}))

    spec = ACTIVATIONS[name]
    x = torch.randn(8)
    with Record():
        spec.reference(x, **spec.params)
    return tuple(ops)


def _kernel_args(name: str, *values) -> tuple[str, list[float]]:
    spec = get(name)
    return spec.kernel_args(dict(zip(spec.params, values)))


_cached_kernel_args = functools.lru_cache(maxsize=4096)(_kernel_args)


def kernel_args(name: str, *values) -> tuple[str, list[float]]:
    """``get(name).kernel_args`` for parameter values given in the spec's order, cached: what a
    module's forward calls (raises for a value the kernel rejects, as the uncached form).
    torch.compile traces the uncached form (it would skip the cache wrapper with a warning)."""
    if torch.compiler.is_compiling() or any(_negative_zero(v) for v in values):
        return _kernel_args(name, *values)
    return _cached_kernel_args(name, *values)


@functools.lru_cache(maxsize=4096)
def _cached_kernel_args_for(name: str, items: tuple) -> tuple[str, list[float]]:
    return get(name).kernel_args(dict(items))


def kernel_args_for(name: str, params: dict[str, Any]) -> tuple[str, list[float]]:
    """``get(name).kernel_args(params)`` for keyword parameters, cached by (name, parameters)
    where every value is a plain number or string: the functional API calls it every time
    (uncached, ``fused_act.activation(x, "relu")`` cost 1.9 us against ``fused_act.relu(x)``'s
    1.2). Tensors and other values take the uncached form, as torch.compile does."""
    if not params and name in _DEFAULT_KERNEL_ARGS:
        return _DEFAULT_KERNEL_ARGS[name]
    if torch.compiler.is_compiling():
        return get(name).kernel_args(params)
    for v in params.values():
        if type(v) not in _PLAIN or _negative_zero(v):
            return get(name).kernel_args(params)
    return _cached_kernel_args_for(name, tuple(params.items()))


_PLAIN = (float, int, bool, str)


def _negative_zero(v) -> bool:
    """-0.0 equals 0.0 as a cache key but not as a bound: hardtanh(x, -0.0, 1.0) clamps to -0.0,
    as torch does, and the caches above would hand it 0.0's kernel arguments."""
    return type(v) is float and v == 0.0 and math.copysign(1.0, v) < 0


def get(name: str) -> ActivationSpec:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"fused_act: unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}") from None
