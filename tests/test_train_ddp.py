"""Two torchrun processes (gloo) take the same steps as one process with the whole batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train.__main__ import main
from train.fakedata import write_all


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors on a shared 2-core machine: a second OpenMP thread only waits for a busy core
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


REPO = Path(__file__).resolve().parent.parent


def test_two_process_gloo_averages_gradients_like_one_full_batch(tmp_path):
    data_dir = write_all(tmp_path / "data", n_train=96, n_test=40)
    # SGD without momentum: after k steps the weights differ only if the averaged gradients did
    args = [
        "e2",
        "--data-dir",
        str(data_dir),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--act",
        "tanh",
        "--no-progress",
        "--no-report",
        "--log-every",
        "1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "train",
            *args,
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0

    run = "e2/mlp1-tanh-fused-s0"
    two = torch.load(tmp_path / "ddp" / run / "checkpoint.pt", weights_only=False)
    one = torch.load(tmp_path / "one" / run / "checkpoint.pt", weights_only=False)
    assert two["state"]["step"] == one["state"]["step"] == 6
    for k in one["model"]:
        torch.testing.assert_close(two["model"][k], one["model"][k], rtol=0, atol=2e-6)
    # the test accuracy is computed on both halves of the test set and summed across processes
    assert [e["test_acc"] for e in two["state"]["evals"]] == [e["test_acc"] for e in one["state"]["evals"]]

    # and a different batch would have moved the weights elsewhere: the check above can fail
    assert main([*args, "--batch-size", "16", "--out", str(tmp_path / "half")]) == 0
    half = torch.load(tmp_path / "half" / run / "checkpoint.pt", weights_only=False)
    assert not torch.allclose(half["model"]["net.1.weight"], one["model"]["net.1.weight"], atol=1e-4)
