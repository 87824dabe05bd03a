"""An interrupted run continued with --resume ends exactly where an uninterrupted run ends; the
checkpoint keeps the format older versions of the loop wrote and read."""

import csv
import json

import pytest
import torch

from train.__main__ import main
from train.fakedata import write_all
from train.loop import TrainState


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


def _rows(path, drop=("epoch_train_s", "images_per_s")):  # the timings differ between runs
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


# checkpoint.pt as the loop wrote it before TrainState existed (torch.save of a plain dict whose
# "state" is the loop's dict of progress), and still writes it: a run in progress resumes across
# versions in both directions.
CHECKPOINT_KEYS = ["model", "optimizer", "scheduler", "scaler", "rng", "state"]
STATE_KEYS = [
    "epoch",
    "batch",
    "step",
    "train_time",
    "eval_time",
    "steps",
    "evals",
    "epochs",
    "layer_stats",
    "ep_loss",
    "ep_correct",
    "ep_n",
    "ep_t0",
]
STATE_TYPES = dict.fromkeys(["epoch", "batch", "step"], int)
STATE_TYPES |= dict.fromkeys(["train_time", "eval_time", "ep_loss", "ep_correct", "ep_n", "ep_t0"], float)
STATE_TYPES |= dict.fromkeys(["steps", "evals", "epochs", "layer_stats"], list)


def test_train_state_round_trip():
    d = {k: i for i, k in enumerate(STATE_KEYS)}
    assert list(TrainState.from_dict(d).to_dict().items()) == list(d.items())
    assert list(TrainState().to_dict()) == STATE_KEYS
    no_t0 = {k: v for k, v in d.items() if k != "ep_t0"}  # the old loop read it with .get("ep_t0", 0.0)
    assert TrainState.from_dict(no_t0).ep_t0 == 0.0
    with pytest.raises(ValueError, match="unknown"):
        TrainState.from_dict({**d, "not_a_key": 1})


def test_resume_from_old_format_checkpoint(tmp_path, data_dir):
    """Interrupted mid-epoch (step 7, batch 2 of epoch 2); its checkpoint is rewritten by hand in
    the old format, from plain dicts only; resuming from it ends where the uninterrupted run ends."""
    common = ["e2", "--data-dir", str(data_dir), "--epochs", "3", "--seed", "3", "--no-progress", "--no-report"]
    common += ["--model", "mlp1", "--act", "tanh", "--batch-size", "16"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--out", str(tmp_path / "b"), "--stop-after", "7"]) == 0
    b = tmp_path / "b" / "e2" / "mlp1-tanh-fused-s3"

    # what the loop writes: nothing but tensors and plain containers (weights_only loads it), the keys above
    ck = torch.load(b / "checkpoint.pt", weights_only=True)
    assert list(ck) == CHECKPOINT_KEYS
    state = ck["state"]
    assert type(state) is dict and list(state) == STATE_KEYS
    for k, t in STATE_TYPES.items():
        assert type(state[k]) is t, k
    assert (state["epoch"], state["batch"], state["step"]) == (1, 2, 7) and state["ep_n"] > 0

    old = {
        "model": dict(ck["model"]),
        "optimizer": ck["optimizer"],
        "scheduler": ck["scheduler"],
        "scaler": ck["scaler"],
        "rng": ck["rng"].clone(),
        "state": {k: state[k] for k in STATE_KEYS},
    }
    (b / "checkpoint.pt").unlink()
    torch.save(old, b / "checkpoint.pt")
    assert main([*common, "--out", str(tmp_path / "b"), "--resume"]) == 0

    a = tmp_path / "a" / "e2" / "mlp1-tanh-fused-s3"
    ca, cb = (torch.load(p / "checkpoint.pt", weights_only=True) for p in (a, b))
    for k in ca["model"]:
        assert torch.equal(ca["model"][k], cb["model"][k]), k
    assert list(cb["state"]) == STATE_KEYS
    sa, sb = (json.loads((p / "summary.json").read_text()) for p in (a, b))
    assert sb["complete"] and sa["steps"] == sb["steps"] == 15
    # the machine keys train/report.py and older summaries have (fused_act.machine.describe adds more)
    machine_keys = {"device", "cpu", "threads", "gpu", "torch", "python", "fused_act", "cpu_isa", "cpu_count"}
    assert machine_keys <= set(sb["machine"])
    for k in ("final_test_acc", "final_train_acc", "test_acc_per_epoch", "train_acc_per_epoch", "steps_to"):
        assert sa[k] == sb[k], k
    for f in ("steps.csv", "evals.csv", "epochs.csv"):
        assert _rows(a / f) == _rows(b / f), f
    assert json.loads((a / "layer_stats.json").read_text()) == json.loads((b / "layer_stats.json").read_text())
