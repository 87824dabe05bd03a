"""The report renders from run dirs: tables with ours beside the published numbers, plots, setup notes."""

import json

import pytest
import torch

from train.__main__ import main
from train.fakedata import write_all
from train.published import E1, E2, E3, E4, same_epoch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors on a shared 2-core machine: a second OpenMP thread only waits for a busy core
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("r")
    data_dir = write_all(root / "data", n_train=64, n_test=32)
    out = root / "runs"
    common = [
        "--data-dir",
        str(data_dir),
        "--epochs",
        "2",
        "--subset",
        "48",
        "--no-progress",
        "--no-report",
        "--out",
        str(out),
    ]
    assert main(["e1", "--model", "mlp1", "mlp6", "--act", "sigmoid", "--impl", "fused", "eager", *common]) == 0
    assert main(["e2", "--act", "relu", "sigmoid", *common]) == 0
    return out


def _png(p):
    return p.is_file() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 2000


def test_report_renders(runs, tmp_path, capsys):
    assert main(["report", str(runs / "e1"), str(runs / "e2"), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "## E1" in md and "## E2" in md
    # published numbers beside ours, after the same number of epochs (2), not the source's final (5)
    for model in ("mlp1", "mlp6"):
        row = next(line for line in md.splitlines() if line.startswith(f"| {model} | sigmoid | fused | 2 |"))
        assert f"| {E1[(model, 'sigmoid')]['test_acc_per_epoch'][1]:.3f} |" in row
        assert f"{E1[(model, 'sigmoid')]['final_test_acc']:.3f}" not in row
    assert str(E2[("mlp1", "sigmoid")]["steps_to"][0.95]) in md
    # ours, read back from the runs
    s = json.loads((runs / "e1" / "mlp1-sigmoid-fused-s0" / "summary.json").read_text())
    assert f"{s['final_test_acc']:.4f}" in md
    # what differs from the source, and how to rerun it
    assert "2 of the setup's 5 epochs" in md and "training subset of 48 images" in md
    assert "python -m train e1 --model mlp1 mlp6" in md
    assert "### fused vs eager" in md
    for name in ("e1_curves.png", "e1_activations.png", "e1_layer_stats.png", "e2_curves.png"):
        assert _png(tmp_path / name), name
        assert f"]({name})" in md


def test_report_finds_runs_below_a_folder(runs, tmp_path):
    assert main(["report", str(runs), "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert md.count("| mlp1 | sigmoid |") >= 3  # E1 fused, E1 eager, E2


def test_plot_activations_cli(tmp_path):
    out = tmp_path / "acts.png"
    assert main(["plot-activations", "softsign", "tanh", "relu", "leaky_relu", "--out", str(out)]) == 0
    assert _png(out)


def test_published_same_epoch():
    e3 = E3[("allcnn", "elu")]
    # E3's log counts from epoch 0: ours after 2 epochs sits beside its "epoch 1" (65.7 / 73.5)
    assert same_epoch(e3, "train", 2, 21) == (pytest.approx(0.657), "")
    assert same_epoch(e3, "test", 2, 21) == (pytest.approx(0.735), "")
    assert same_epoch(e3, "test", 21, 21) == (pytest.approx(0.869), "")
    # a source with only a final number: shown only after its whole schedule, else said so
    only_final = E1[("mlp6", "identity")]
    assert same_epoch(only_final, "test", 5, 5) == (0.877, "")
    assert same_epoch(only_final, "test", 1, 5) == (None, "0.877 after 5 epochs")
    assert same_epoch(E4[("inception", "sigmoid")], "test", 100, 100) == (None, "N/A (does not train)")
    assert same_epoch(None, "test", 1, 5) == (None, "")
