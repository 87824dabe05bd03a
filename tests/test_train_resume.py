"""An interrupted run continued with --resume ends exactly where an uninterrupted run ends."""

import csv
import json

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


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("data"), n_train=80, n_test=30)


def _rows(path, drop=("epoch_train_s",)):
    return [{k: v for k, v in r.items() if k not in drop} for r in csv.DictReader(open(path))]


@pytest.mark.parametrize(
    "exp,argv,stop",
    [
        # E2: SGD, evaluation every step early on, thresholds; stop mid-epoch
        ("e2", ["--model", "mlp1", "--act", "tanh", "--batch-size", "16"], 7),
        # E3's pipeline: random augmented copies, per-batch standardisation, AMSGrad state; stop at an epoch end
        ("e3", ["--model", "mlp1", "--act", "elu", "--batch-size", "16"], 10),
        # E1: RMSprop; two interruptions
        ("e1", ["--model", "mlp6", "--act", "sigmoid", "--batch-size", "32"], 2),
    ],
)
def test_resume_equals_uninterrupted(tmp_path, data_dir, exp, argv, stop):
    common = [exp, "--data-dir", str(data_dir), "--epochs", "3", "--seed", "3", "--no-progress", "--no-report", *argv]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--stop-after", str(stop)]) == 0
    name = f"{argv[1]}-{argv[3]}-fused-s3"
    b = tmp_path / "b" / exp / name
    interrupted = json.loads((b / "summary.json").read_text())
    assert not interrupted["complete"] and interrupted["steps"] == stop
    if exp == "e1":  # interrupted a second time, later
        assert main([*common, "--out", str(tmp_path / "b"), "--resume", "--stop-after", str(stop + 3)]) == 0
        assert json.loads((b / "summary.json").read_text())["steps"] == stop + 3
    assert main([*common, "--out", str(tmp_path / "b"), "--resume"]) == 0

    a = tmp_path / "a" / exp / name
    ca, cb = (torch.load(p / "checkpoint.pt", weights_only=False) for p in (a, b))
    assert ca["model"].keys() == cb["model"].keys()
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert sb["complete"] and sa["steps"] == sb["steps"]
    for k in ("final_test_acc", "final_train_acc", "test_acc_per_epoch", "train_acc_per_epoch", "steps_to"):
        assert sa[k] == sb[k], k
    for f in ("steps.csv", "evals.csv", "epochs.csv"):
        assert _rows(a / f) == _rows(b / f), f
    la, lb = (json.loads((p / "layer_stats.json").read_text()) for p in (a, b))
    assert la == lb


def test_resume_of_a_finished_run_changes_nothing(tmp_path, data_dir):
    argv = [
        "e2",
        "--data-dir",
        str(data_dir),
        "--epochs",
        "1",
        "--model",
        "mlp1",
        "--act",
        "relu",
        "--out",
        str(tmp_path),
        "--no-progress",
        "--no-report",
    ]
    assert main(argv) == 0
    run = tmp_path / "e2" / "mlp1-relu-fused-s0"
    before = (run / "evals.csv").read_text()
    assert main([*argv, "--resume"]) == 0
    assert (run / "evals.csv").read_text() == before
