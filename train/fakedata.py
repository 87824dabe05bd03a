"""Small random data sets written in the real on-disk formats, for tests and smoke runs:
MNIST IDX files (MNIST/raw), CIFAR-10/100 python pickles, and ImageFolder trees (PNG or JPEG).

The images carry a class signal (a class-dependent bright square) so a few steps can learn it.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np


def _images(n: int, h: int, w: int, c: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.integers(0, 60, (n, h, w, c), dtype=np.uint8)
    cells = int(np.ceil(np.sqrt(classes)))
    s = max(2, h // cells)
    for i, k in enumerate(y):
        r, q = divmod(int(k), cells)
        x[i, r * s : (r + 1) * s, q * s : (q + 1) * s] = 230
    return x, y


def write_idx(path: Path, arr: np.ndarray) -> None:
    """IDX: 0x00 0x00 <dtype 0x08 = ubyte> <ndim>, big-endian int32 dims, then the bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">BBBB", 0, 0, 0x08, arr.ndim))
        f.write(struct.pack(f">{arr.ndim}i", *arr.shape))
        f.write(arr.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 256, n_test: int = 128, seed: int = 0) -> Path:
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("t10k", n_test, seed + 1)):
        x, y = _images(n, 28, 28, 1, 10, s)
        write_idx(raw / f"{split}-images-idx3-ubyte", x[..., 0])
        write_idx(raw / f"{split}-labels-idx1-ubyte", y)
    return Path(root)


def write_cifar(root: Path, classes: int = 10, n_train: int = 250, n_test: int = 100, seed: int = 0) -> Path:
    """torchvision's layout: cifar-10-batches-py/data_batch_{1..5}, test_batch, batches.meta, or
    cifar-100-python/{train,test,meta}; rows are 3072 bytes, R then G then B planes."""
    root = Path(root)
    folder = root / ("cifar-10-batches-py" if classes == 10 else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    x, y = _images(n_train + n_test, 32, 32, 3, classes, seed)
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    label_key = "labels" if classes == 10 else "fine_labels"

    def dump(name, r, lab):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": r, label_key: [int(v) for v in lab], "batch_label": name}, f)

    if classes == 10:
        parts = np.array_split(np.arange(n_train), 5)
        for i, p in enumerate(parts, 1):
            dump(f"data_batch_{i}", rows[p], y[p])
        dump("test_batch", rows[n_train:], y[n_train:])
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    else:
        dump("train", rows[:n_train], y[:n_train])
        dump("test", rows[n_train:], y[n_train:])
        with open(folder / "meta", "wb") as f:
            pickle.dump({"fine_label_names": [f"class{i:02d}" for i in range(100)]}, f)
    return root


def write_image_folder(
    root: Path, classes: int = 10, n_train: int = 100, n_test: int = 40, ext: str = "png", seed: int = 0
) -> Path:
    from PIL import Image

    root = Path(root)
    x, y = _images(n_train + n_test, 32, 32, 3, classes, seed)
    for i, (img, k) in enumerate(zip(x, y)):
        split = "train" if i < n_train else "test"
        d = root / split / f"class{int(k):02d}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.{ext}")
    for split in ("train", "test"):  # every class folder on both sides, as in the real tree
        for k in range(classes):
            (root / split / f"class{k:02d}").mkdir(parents=True, exist_ok=True)
    return root


def write_all(root: Path, n_train: int = 256, n_test: int = 128) -> Path:
    """<root>/mnist, <root>/cifar10 (python batches), <root>/cifar100: a data dir for every experiment."""
    root = Path(root)
    write_mnist(root / "mnist", n_train, n_test)
    write_cifar(root / "cifar10", 10, n_train, n_test)
    write_cifar(root / "cifar100", 100, n_train, n_test)
    return root
