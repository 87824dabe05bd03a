"""Per-batch preprocessing, with randomness drawn only from a generator seeded by
(seed, epoch, step, rank): an interrupted and resumed run sees the same augmentations as an
uninterrupted one, whatever else consumed the global RNG."""

from __future__ import annotations

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .data import TensorData

TO_UNIT = v2.ToDtype(torch.float32, scale=True)  # uint8 -> [0, 1]


def batch_generator(seed: int, epoch: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 1_000_003 + step) * 101 + rank)


def e3_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One 'small shift/rotation/scale' copy of each image, plus a coin-flip horizontal flip (E3):
    rotation up to 10 degrees, shift up to 2 px, scale 0.9-1.1, bilinear, zero fill. All images in
    one affine_grid/grid_sample call: per-image torchvision affine calls cost more than the step."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=g) < 0.5
    angle = torch.deg2rad(torch.empty(n).uniform_(-10, 10, generator=g))
    shift = torch.empty(n, 2).uniform_(-2, 2, generator=g).round()
    scale = torch.empty(n).uniform_(0.9, 1.1, generator=g)
    x = torch.where(flip.view(n, 1, 1, 1), TF.horizontal_flip(x), x).float()
    # theta maps output to input coordinates (normalised to [-1, 1]): the inverse of
    # x_out = scale * R(angle) x_in + shift
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    rinv = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)  # R(-angle) / scale
    t = shift * torch.tensor([2.0 / w, 2.0 / h])
    theta = torch.cat([rinv, -(rinv @ t.unsqueeze(2))], 2)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def random_crop_flip(img: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    h, w = img.shape[-2:]
    top = int(torch.randint(0, h - size + 1, (), generator=g))
    left = int(torch.randint(0, w - size + 1, (), generator=g))
    img = TF.crop(img, top, left, size, size)
    return TF.horizontal_flip(img) if torch.rand((), generator=g) < 0.5 else img


class Preprocess:
    """``train(x_uint8, y, g)`` and ``test(x_uint8)`` for one of the experiments' pipelines."""

    def __init__(self, kind: str, data: TensorData):
        self.kind = kind
        x = TO_UNIT(data.train_x)
        if kind == "e3":  # per-pixel statistics (C x H x W) of the training set, for test images
            self.mean, self.std = x.mean(0), x.std(0)
        elif kind == "e4":  # per-channel
            self.mean, self.std = x.mean((0, 2, 3)).view(-1, 1, 1), x.std((0, 2, 3)).view(-1, 1, 1)
        self.crop = 28

    @property
    def samples_per_step_divisor(self) -> int:
        """E3's batch is half originals, half their augmented copies."""
        return 2 if self.kind == "e3" else 1

    def input_shape(self, shape):
        return (shape[0], self.crop, self.crop) if self.kind == "e4" else tuple(shape)

    def train(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator):
        if self.kind == "unit":
            return TO_UNIT(x), y
        if self.kind == "e3":
            aug = e3_augment(x, g)
            xb = TO_UNIT(torch.cat([x, aug]))
            xb = (xb - xb.mean(0)) / (xb.std(0) + 1e-8)
            return xb, torch.cat([y, y])
        if self.kind == "e4":
            xb = torch.stack([random_crop_flip(img, self.crop, g) for img in x])
            return (TO_UNIT(xb) - self.mean) / self.std, y
        raise ValueError(f"unknown preprocess {self.kind!r}")

    def test(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "unit":
            return TO_UNIT(x)
        if self.kind == "e3":
            return (TO_UNIT(x) - self.mean) / (self.std + 1e-8)
        if self.kind == "e4":
            return (TO_UNIT(TF.center_crop(x, [self.crop, self.crop])) - self.mean) / self.std
        raise ValueError(f"unknown preprocess {self.kind!r}")
