"""Datasets from their standard on-disk formats into uint8 tensors in memory.

Every dataset here fits in memory (MNIST 47 MB, CIFAR 150 MB as uint8), and indexing a tensor is
far cheaper per step than a DataLoader's per-sample Python calls on two CPU cores. Readers are
torchvision's: ``MNIST`` (IDX files under ``MNIST/raw``), ``CIFAR10``/``CIFAR100`` (python
pickles) and ``ImageFolder`` trees (``train/<class>/*`` and ``test/<class>/*``, e.g. the CIFAR-10
JPEG copy, also as a ``.tar.gz`` that is extracted once to the cache dir).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

REPO = Path(__file__).resolve().parent.parent
SHAPES = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
NUM_CLASSES = {"mnist": 10, "cifar10": 10, "cifar100": 100}


class DataNotFound(Exception):
    """Raised with a message that says what to put where; the CLI prints it without a traceback."""


@dataclass
class TensorData:
    train_x: torch.Tensor  # uint8 N x C x H x W
    train_y: torch.Tensor  # int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: list
    source: str  # what was read, for the report

    @property
    def shape(self):
        return tuple(self.train_x.shape[1:])


def default_data_dir(arg: str | None = None) -> Path | None:
    """--data-dir, else $FUSED_ACT_DATA, else ../shared/data next to the repo if it exists."""
    if arg:
        return Path(arg).expanduser()
    if os.environ.get("FUSED_ACT_DATA"):
        return Path(os.environ["FUSED_ACT_DATA"]).expanduser()
    shared = REPO.parent / "shared" / "data"
    return shared if shared.is_dir() else None


def cache_dir() -> Path:
    return Path(os.environ.get("FUSED_ACT_CACHE", Path.home() / ".cache" / "fused_act"))


class _CifarNoMd5:
    """torchvision's CIFAR readers check every file's md5 against the official release; we read any
    file in that format (a copy re-saved with another pickle protocol, or a small test file)."""

    def _check_integrity(self) -> bool:
        root = os.path.join(self.root, self.base_folder)
        return all(os.path.isfile(os.path.join(root, f)) for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        with open(os.path.join(self.root, self.base_folder, self.meta["filename"]), "rb") as f:
            self.classes = pickle.load(f, encoding="latin1")[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


class CIFAR10Files(_CifarNoMd5, datasets.CIFAR10):
    pass


class CIFAR100Files(_CifarNoMd5, datasets.CIFAR100):
    pass


def _from_arrays(train, test, source) -> TensorData:
    def conv(ds):
        x = ds.data
        x = torch.as_tensor(np.asarray(x))
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
        return x.contiguous(), torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)

    (trx, try_), (tex, tey) = conv(train), conv(test)
    return TensorData(trx, try_, tex, tey, list(train.classes), source)


def _image_folder(root: Path, source: str) -> TensorData:
    """Decode an ImageFolder tree once and keep the tensors in the cache dir."""
    files = sorted(glob.glob(str(root / "*" / "*" / "*")))
    key = hashlib.sha1(
        f"{root.resolve()}|{len(files)}|{os.path.getmtime(files[-1]) if files else 0}".encode()
    ).hexdigest()[:16]
    cached = cache_dir() / f"imagefolder-{key}.pt"
    if cached.is_file():
        d = torch.load(cached)
        return TensorData(**d, source=source)
    parts = {}
    for split in ("train", "test"):
        ds = datasets.ImageFolder(str(root / split))
        xs = [torch.from_numpy(np.array(ds.loader(p).convert("RGB"))).permute(2, 0, 1) for p, _ in ds.samples]
        parts[split] = (torch.stack(xs), torch.tensor(ds.targets, dtype=torch.int64), ds.classes)
    tr, te = parts["train"], parts["test"]
    if tr[2] != te[2]:
        raise DataNotFound(f"{root}: train/ and test/ have different class folders")
    d = dict(train_x=tr[0], train_y=tr[1], test_x=te[0], test_y=te[1], classes=tr[2])
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.save(d, str(cached) + ".tmp")
    os.replace(str(cached) + ".tmp", cached)
    return TensorData(**d, source=source)


def _is_image_folder(p: Path) -> bool:
    return (p / "train").is_dir() and (p / "test").is_dir() and any((p / "train").iterdir())


def _extract_once(tarball: Path) -> Path:
    """Extract to the cache dir (never next to the read-only data); a marker says it finished."""
    dest = cache_dir() / tarball.name.split(".tar")[0]
    if not (dest / ".complete").is_file():
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tf:
            tf.extractall(dest, filter="data")
        (dest / ".complete").write_text(str(tarball))
    # the tree may sit one folder down
    for cand in [dest, *sorted(p for p in dest.iterdir() if p.is_dir())]:
        if _is_image_folder(cand) or (cand / "cifar-10-batches-py").is_dir() or (cand / "cifar-100-python").is_dir():
            return cand
    return dest


def _missing(name: str, data_dir: Path | None, tried: list[Path]) -> DataNotFound:
    where = {
        "mnist": "MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte (torchvision's MNIST layout), "
        "under <data-dir>/mnist or <data-dir>",
        "cifar10": "cifar-10-batches-py/ (torchvision's CIFAR10 python batches) under <data-dir>/cifar10 or "
        "<data-dir>; or an ImageFolder tree <data-dir>/cifar10/{train,test}/<class>/*.jpg|png; "
        "or a .tar.gz of either in <data-dir>/cifar10/",
        "cifar100": "cifar-100-python/{train,test,meta} (torchvision's CIFAR100 python format) under "
        "<data-dir>/cifar100 or <data-dir>; or an ImageFolder tree <data-dir>/cifar100/{train,test}/<class>/*",
    }[name]
    dd = (
        f"{data_dir}" + ("" if data_dir.is_dir() else " (does not exist)")
        if data_dir
        else "(none: pass --data-dir DIR or set FUSED_ACT_DATA)"
    )
    return DataNotFound(
        f"{name} not found. Data dir: {dd}.\n"
        f"  Looked in: {', '.join(str(t) for t in tried) or '-'}\n"
        f"  Expected: {where}.\n"
        f"  Put the files there, point --data-dir / FUSED_ACT_DATA at them, or add --download on a "
        f"machine with internet access."
    )


def load(name: str, data_dir: str | Path | None = None, download: bool = False) -> TensorData:
    data_dir = default_data_dir(str(data_dir) if data_dir else None)
    if name not in SHAPES:
        raise SystemExit(f"unknown dataset {name!r}; known: {', '.join(SHAPES)}")
    tried: list[Path] = []
    if data_dir is not None and data_dir.is_dir():
        roots = [data_dir / name, data_dir]
        if name == "mnist":
            for r in roots:
                tried.append(r / "MNIST" / "raw")
                if (r / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
                    return _from_arrays(
                        datasets.MNIST(str(r), train=True),
                        datasets.MNIST(str(r), train=False),
                        f"MNIST IDX files in {r}/MNIST/raw",
                    )
        else:
            cls, folder = (
                (CIFAR10Files, "cifar-10-batches-py") if name == "cifar10" else (CIFAR100Files, "cifar-100-python")
            )
            candidates = list(roots)
            labels = {r: str(r) for r in roots}  # what the report calls it: no cache paths
            for r in roots:
                if r.is_dir():
                    for t in sorted(r.glob("*.tar.gz")) + sorted(r.glob("*.tgz")):
                        if name == "cifar10" and "100" in t.name:
                            continue
                        if name == "cifar100" and "100" not in t.name and r == data_dir:
                            continue
                        extracted = _extract_once(t)
                        candidates.append(extracted)
                        labels[extracted] = f"{t.name} (extracted to the cache dir)"
            for r in candidates:
                tried.append(r)
                if (r / folder).is_dir():
                    try:
                        source = f"{name} python batches {folder} in {labels[r]}"
                        return _from_arrays(cls(str(r), train=True), cls(str(r), train=False), source)
                    except RuntimeError:
                        continue
                if _is_image_folder(r):
                    return _image_folder(r, f"{name} ImageFolder tree {labels[r]}")
    if download:
        root = (data_dir or cache_dir()) / name
        try:
            cls = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100}[name]
            return _from_arrays(
                cls(str(root), train=True, download=True),
                cls(str(root), train=False, download=True),
                f"{name} downloaded by torchvision to {root}",
            )
        except Exception as e:  # noqa: BLE001  (no network, proxy, disk: all end in the same advice)
            tried.append(root)
            err = _missing(name, data_dir, tried)
            raise DataNotFound(f"{err}\n  Download failed: {type(e).__name__}: {e}") from None
    raise _missing(name, data_dir, tried)


def subset(data: TensorData, n_train: int | None, n_test: int | None) -> TensorData:
    """The first n of a fixed permutation (independent of --seed), so every activation sees the same subset."""
    g = torch.Generator().manual_seed(20240613)

    def take(x, y, n):
        if not n or n >= len(y):
            return x, y
        idx = torch.randperm(len(y), generator=g)[:n].sort().values
        return x[idx], y[idx]

    trx, tr_y = take(data.train_x, data.train_y, n_train)
    tex, te_y = take(data.test_x, data.test_y, n_test)
    return TensorData(trx, tr_y, tex, te_y, data.classes, data.source)
