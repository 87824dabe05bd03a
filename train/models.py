"""The experiments' networks, built with one activation factory so ``--impl`` swaps the kernels only.

``--impl fused`` puts ``fused_act.nn.Activation`` modules in; ``--impl eager`` puts torch's own
module where torch has one, and the registry's plain-torch composition where it has not. Either way
each activation is an ``nn.Module`` tagged ``is_activation`` so layer statistics can find them.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

import fused_act
from fused_act.registry import get as get_spec


class EagerReference(nn.Module):
    """The registry's torch composition, for activations torch.nn does not have."""

    def __init__(self, name: str, **params):
        super().__init__()
        self.name, self.params = name, get_spec(name).resolve(params)
        self.fn = get_spec(name).reference

    def forward(self, x):
        return self.fn(x, **self.params)


def activation_factory(name: str, impl: str = "fused", **params) -> Callable[[], nn.Module]:
    spec = get_spec(name)
    params = spec.resolve(params)
    if impl not in ("fused", "eager"):
        raise ValueError(f"impl must be 'fused' or 'eager', got {impl!r}")

    def make() -> nn.Module:
        if impl == "fused":
            m = fused_act.nn.Activation(name, **params)
        elif name == "identity":
            m = nn.Identity()
        elif spec.torch_module is not None:
            m = getattr(nn, spec.torch_module)(**params)
        else:
            m = EagerReference(name, **params)
        m.is_activation = True
        m.act_name = name
        return m

    return make


class MLP(nn.Module):
    """784 -> [Dense(width, act)] x depth -> Dense(classes); the softmax lives in the loss."""

    def __init__(
        self, in_features: int, num_classes: int, act: Callable[[], nn.Module], depth: int = 1, width: int = 512
    ):
        super().__init__()
        layers, d = [nn.Flatten()], in_features
        for _ in range(depth):
            layers += [nn.Linear(d, width), act()]
            d = width
        layers.append(nn.Linear(d, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class AllCNNC(nn.Module):
    """All-CNN-C as in E3: no biases, average pooling, the activation after every conv."""

    def __init__(self, in_channels: int, num_classes: int, act: Callable[[], nn.Module]):
        super().__init__()

        def conv(i, o, k, pad):
            return [nn.Conv2d(i, o, k, padding=pad, bias=False), act()]

        self.net = nn.Sequential(
            *conv(in_channels, 96, 3, 1),
            *conv(96, 96, 3, 1),
            *conv(96, 192, 3, 1),
            nn.AvgPool2d(2, 2),
            *conv(192, 192, 3, 1),
            *conv(192, 192, 3, 1),
            *conv(192, 192, 3, 1),
            nn.AvgPool2d(2, 2),
            *conv(192, 192, 3, 0),
            *conv(192, 192, 1, 0),
            *conv(192, num_classes, 1, 0),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x):
        return self.net(x)


class ConvAct(nn.Sequential):
    """MXNet's ConvFactory with its BatchNorm removed: conv (with bias) + activation."""

    def __init__(self, i, o, k, act, stride=1, pad=0):
        super().__init__(nn.Conv2d(i, o, k, stride, pad), act())


class InceptionA(nn.Module):
    def __init__(self, i, n1, n3r, n3, nd3r, nd3, pool, proj, act):
        super().__init__()
        self.b1 = ConvAct(i, n1, 1, act)
        self.b3 = nn.Sequential(ConvAct(i, n3r, 1, act), ConvAct(n3r, n3, 3, act, pad=1))
        self.bd3 = nn.Sequential(
            ConvAct(i, nd3r, 1, act), ConvAct(nd3r, nd3, 3, act, pad=1), ConvAct(nd3, nd3, 3, act, pad=1)
        )
        p = nn.AvgPool2d(3, 1, 1, count_include_pad=True) if pool == "avg" else nn.MaxPool2d(3, 1, 1)
        self.bp = nn.Sequential(p, ConvAct(i, proj, 1, act))
        self.out_channels = n1 + n3 + nd3 + proj

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.bd3(x), self.bp(x)], 1)


class InceptionB(nn.Module):
    """The grid-reduction module (3c, 4e): stride-2 branches and a max pool."""

    def __init__(self, i, n3r, n3, nd3r, nd3, act):
        super().__init__()
        self.b3 = nn.Sequential(ConvAct(i, n3r, 1, act), ConvAct(n3r, n3, 3, act, stride=2, pad=1))
        self.bd3 = nn.Sequential(
            ConvAct(i, nd3r, 1, act), ConvAct(nd3r, nd3, 3, act, pad=1), ConvAct(nd3, nd3, 3, act, stride=2, pad=1)
        )
        self.bp = nn.MaxPool2d(3, 2, 1)
        self.out_channels = n3 + nd3 + i

    def forward(self, x):
        return torch.cat([self.b3(x), self.bd3(x), self.bp(x)], 1)


class InceptionNoBN(nn.Module):
    """BN-Inception (MXNet's inception-bn symbol, modules 3a-5b) without BatchNorm, for 28x28 inputs."""

    def __init__(self, in_channels: int, num_classes: int, act: Callable[[], nn.Module]):
        super().__init__()
        stem = nn.Sequential(
            ConvAct(in_channels, 64, 3, act, pad=1), ConvAct(64, 64, 1, act), ConvAct(64, 192, 3, act, pad=1)
        )
        mods, c = [], 192
        for kind, args in [
            ("A", (64, 64, 64, 64, 96, "avg", 32)),  # 3a
            ("A", (64, 64, 96, 64, 96, "avg", 64)),  # 3b
            ("B", (128, 160, 64, 96)),  # 3c
            ("A", (224, 64, 96, 96, 128, "avg", 128)),  # 4a
            ("A", (192, 96, 128, 96, 128, "avg", 128)),  # 4b
            ("A", (160, 128, 160, 128, 160, "avg", 128)),  # 4c
            ("A", (96, 128, 192, 160, 192, "avg", 128)),  # 4d
            ("B", (128, 192, 192, 256)),  # 4e
            ("A", (352, 192, 320, 160, 224, "avg", 128)),  # 5a
            ("A", (352, 192, 320, 192, 224, "max", 128)),  # 5b
        ]:
            m = InceptionA(c, *args, act) if kind == "A" else InceptionB(c, *args, act)
            mods.append(m)
            c = m.out_channels
        self.features = nn.Sequential(stem, *mods)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


MODELS = {
    "mlp1": lambda shape, k, act, **kw: MLP(math.prod(shape), k, act, depth=1, **kw),
    "mlp6": lambda shape, k, act, **kw: MLP(math.prod(shape), k, act, depth=6, **kw),
    "mlp_deep": lambda shape, k, act, depth=20, width=256: MLP(math.prod(shape), k, act, depth, width),
    "allcnn": lambda shape, k, act: AllCNNC(shape[0], k, act),
    "inception": lambda shape, k, act: InceptionNoBN(shape[0], k, act),
}


def init_weights(model: nn.Module, scheme: str) -> None:
    """glorot: Keras's Dense default (glorot_uniform, zero bias); normal0.05: N(0, 0.05);
    kaiming: MSRA uniform, zero bias; torch: leave torch's defaults."""
    if scheme == "torch":
        return
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if scheme == "glorot":
                nn.init.xavier_uniform_(m.weight)
            elif scheme == "normal0.05":
                nn.init.normal_(m.weight, 0.0, 0.05)
            elif scheme == "kaiming":
                nn.init.kaiming_uniform_(m.weight, a=0.0, nonlinearity="relu")
            else:
                raise ValueError(f"unknown init {scheme!r}")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_model(
    name: str,
    input_shape,
    num_classes: int,
    act: str,
    impl: str = "fused",
    act_params: dict | None = None,
    init: str = "torch",
    **model_args,
) -> nn.Module:
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; known: {', '.join(MODELS)}")
    model = MODELS[name](
        tuple(input_shape), num_classes, activation_factory(act, impl, **(act_params or {})), **model_args
    )
    init_weights(model, init)
    return model
