"""Data sets read from small files written in the real formats; the missing-data message."""

import pickle
import struct
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from train import data
from train.__main__ import main


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors on a shared 2-core machine: a second OpenMP thread only waits for a busy core
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSED_ACT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("FUSED_ACT_DATA", raising=False)


def _idx(path, arr):
    # written here by hand, independently of train.fakedata
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape) + arr.tobytes())


def test_mnist_idx(tmp_path):
    rng = np.random.default_rng(1)
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    xs = {s: rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 12), ("t10k", 5))}
    ys = {s: rng.integers(0, 10, len(x), dtype=np.uint8) for s, x in xs.items()}
    for s in xs:
        _idx(raw / f"{s}-images-idx3-ubyte", xs[s])
        _idx(raw / f"{s}-labels-idx1-ubyte", ys[s])
    d = data.load("mnist", tmp_path)
    assert d.train_x.shape == (12, 1, 28, 28) and d.train_x.dtype == torch.uint8
    assert np.array_equal(d.train_x[:, 0].numpy(), xs["train"])
    assert np.array_equal(d.test_y.numpy(), ys["t10k"])
    # the data dir may also be the folder holding MNIST/ directly
    assert torch.equal(data.load("mnist", tmp_path / "mnist").test_x, d.test_x)


def _pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def test_cifar10_and_cifar100_python_batches(tmp_path):
    rng = np.random.default_rng(2)
    c10 = tmp_path / "cifar10" / "cifar-10-batches-py"
    c10.mkdir(parents=True)
    rows = rng.integers(0, 256, (7, 3072), dtype=np.uint8)
    for i in range(1, 6):
        _pickle(c10 / f"data_batch_{i}", {"data": rows[i - 1 : i], "labels": [i]})
    _pickle(c10 / "test_batch", {"data": rows[5:], "labels": [0, 9]})
    _pickle(c10 / "batches.meta", {"label_names": list("abcdefghij")})
    d = data.load("cifar10", tmp_path)
    assert d.train_x.shape == (5, 3, 32, 32) and d.train_y.tolist() == [1, 2, 3, 4, 5]
    # rows are R plane, G plane, B plane, each row-major
    assert torch.equal(d.train_x[0], torch.from_numpy(rows[0].reshape(3, 32, 32)))
    assert d.test_y.tolist() == [0, 9] and d.classes == list("abcdefghij")

    c100 = tmp_path / "cifar100" / "cifar-100-python"
    c100.mkdir(parents=True)
    _pickle(c100 / "train", {"data": rows[:4], "fine_labels": [99, 0, 50, 7], "coarse_labels": [0] * 4})
    _pickle(c100 / "test", {"data": rows[4:], "fine_labels": [1, 2, 3], "coarse_labels": [0] * 3})
    _pickle(c100 / "meta", {"fine_label_names": [f"c{i}" for i in range(100)]})
    d = data.load("cifar100", tmp_path)
    assert d.train_y.tolist() == [99, 0, 50, 7] and len(d.classes) == 100
    assert torch.equal(d.test_x[2], torch.from_numpy(rows[6].reshape(3, 32, 32)))


def _tree(root, ext):
    rng = np.random.default_rng(3)
    imgs = {}
    for split, n in (("train", 2), ("test", 1)):
        for cls in ("airplane", "bird", "cat"):
            (root / split / cls).mkdir(parents=True)
            for i in range(n):
                a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(a).save(root / split / cls / f"{i:04d}.{ext}")
                imgs[(split, cls, i)] = a
    return imgs


def test_image_folder_png_tree(tmp_path):
    imgs = _tree(tmp_path / "cifar10", "png")
    d = data.load("cifar10", tmp_path)
    assert d.classes == ["airplane", "bird", "cat"]
    assert d.train_y.tolist() == [0, 0, 1, 1, 2, 2] and d.test_y.tolist() == [0, 1, 2]
    assert torch.equal(d.train_x[3], torch.from_numpy(imgs[("train", "bird", 1)]).permute(2, 0, 1))
    # decoded once, then read from the cache
    assert list((tmp_path / "cache").glob("imagefolder-*.pt"))
    assert torch.equal(data.load("cifar10", tmp_path).train_x, d.train_x)


def test_image_folder_jpeg_tarball_extracted_to_cache(tmp_path):
    src = tmp_path / "src"
    _tree(src, "jpg")
    dd = tmp_path / "data" / "cifar10"
    dd.mkdir(parents=True)
    with tarfile.open(dd / "cifar10-jpeg.tar.gz", "w:gz") as tf:
        tf.add(src / "train", "train")
        tf.add(src / "test", "test")
    d = data.load("cifar10", tmp_path / "data")
    assert d.train_x.shape == (6, 3, 32, 32) and d.test_y.tolist() == [0, 1, 2]
    assert (tmp_path / "cache" / "cifar10-jpeg" / "train" / "cat").is_dir()  # not next to the data
    assert sorted(p.name for p in dd.iterdir()) == ["cifar10-jpeg.tar.gz"]
    ref = np.array(Image.open(src / "test" / "bird" / "0000.jpg").convert("RGB"))
    assert torch.equal(d.test_x[1], torch.from_numpy(ref).permute(2, 0, 1))


@pytest.mark.parametrize("exp", ["e1", "e3", "e4"])
def test_missing_data_dir_gives_the_message_not_a_traceback(tmp_path, capsys, exp):
    rc = main([exp, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "runs"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "not found" in err and "does not exist" in err and "--data-dir" in err
    assert {"e1": "MNIST/raw", "e3": "cifar-10-batches-py", "e4": "cifar-100-python"}[exp] in err
    assert "Traceback" not in err


def test_missing_data_subprocess_exit_code(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(repo), "FUSED_ACT_CACHE": str(tmp_path)}
    env.pop("FUSED_ACT_DATA", None)
    p = subprocess.run(
        [sys.executable, "-m", "train", "e2", "--data-dir", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert p.returncode == 2 and "mnist not found" in p.stderr and "Traceback" not in p.stderr


def test_subset_is_fixed_and_sorted():
    x = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    y = torch.arange(100)
    td = data.TensorData(x, y, x[:10], y[:10], list(range(100)), "t")
    a, b = data.subset(td, 20, 5), data.subset(td, 20, 5)
    assert torch.equal(a.train_y, b.train_y) and len(a.train_y) == 20 and len(a.test_y) == 5
    assert torch.equal(a.train_y, a.train_y.sort().values) and len(set(a.train_y.tolist())) == 20
