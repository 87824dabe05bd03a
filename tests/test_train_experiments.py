"""Every experiment end to end for a few steps on small files in the real formats."""

import csv
import json

import pytest
import torch

from train.__main__ import main
from train.fakedata import write_all
from train.models import build_model


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors on a shared 2-core machine: a second OpenMP thread only waits for a busy core
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("data"), n_train=64, n_test=32)


def _run(argv, out):
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0


def _summaries(out, exp):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / exp).glob("*/summary.json")}


@pytest.mark.parametrize(
    "exp,extra,expected_runs",
    [
        (
            "e1",
            ["--subset", "64"],
            {f"{m}-{a}-fused-s0" for m in ("mlp1", "mlp6") for a in ("identity", "sigmoid", "tanh", "relu")},
        ),
        ("e2", ["--subset", "64"], {f"mlp1-{a}-fused-s0" for a in ("sigmoid", "tanh", "relu")}),
        (
            "depth",
            ["--subset", "64"],
            {f"mlp_deep-{a}-fused-s0" for a in ("sigmoid", "rescaled_sigmoid", "tanh", "relu", "leaky_tanh")},
        ),
        # the conv nets are slow on a CPU: one activation each (E4 below)
        ("e3", ["--subset", "4", "--test-subset", "4", "--batch-size", "4", "--act", "elu"], {"allcnn-elu-fused-s0"}),
    ],
)
def test_experiment_end_to_end(tmp_path, data_dir, exp, extra, expected_runs):
    _run([exp, "--data-dir", str(data_dir), "--epochs", "1", *extra], tmp_path)
    sums = _summaries(tmp_path, exp)
    assert set(sums) == expected_runs
    for name, s in sums.items():
        assert s["complete"] and s["epochs_done"] == 1 and s["experiment"] == exp
        assert 0.0 <= s["final_test_acc"] <= 1.0
        run = tmp_path / exp / name
        steps = list(csv.DictReader(open(run / "steps.csv")))
        assert len(steps) == s["steps"] == s["steps_per_epoch"] > 0
        assert all(float(r["loss"]) == float(r["loss"]) for r in steps)  # no NaN
        ls = json.loads((run / "layer_stats.json").read_text())
        assert [x["tag"] for x in ls] == ["init", "epoch"] and ls[0]["activations"] and ls[0]["weights"]
    assert (tmp_path / exp / "report.md").is_file()


def test_e4_smoke_on_cifar100_shape(tmp_path, data_dir):
    """E4's only check here: the 33-deep Inception trains a step on CIFAR-100-shaped files."""
    _run(
        [
            "e4",
            "--data-dir",
            str(data_dir),
            "--epochs",
            "1",
            "--subset",
            "4",
            "--test-subset",
            "2",
            "--batch-size",
            "2",
            "--act",
            "leaky_relu",
        ],
        tmp_path,
    )
    s = _summaries(tmp_path, "e4")["inception-leaky_relu-fused-s0"]
    assert s["complete"] and s["steps"] == 2 and s["n_train"] == 4 and s["dataset"] == "cifar100"
    assert s["act_params"] == {"negative_slope": 0.25}  # the paper's slope, not torch's 0.01
    assert 0.0 <= s["final_test_acc"] <= 1.0 and (tmp_path / "e4" / "report.md").is_file()


def test_any_activation_on_any_model(tmp_path, data_dir):
    _run(
        [
            "e3",
            "--data-dir",
            str(data_dir),
            "--epochs",
            "1",
            "--subset",
            "32",
            "--model",
            "mlp6",
            "mlp_deep",
            "--act",
            "mish",
            "squared_relu",
        ],
        tmp_path,
    )
    assert set(_summaries(tmp_path, "e3")) == {
        f"{m}-{a}-fused-s0" for m in ("mlp6", "mlp_deep") for a in ("mish", "squared_relu")
    }


def test_fused_and_eager_train_alike(tmp_path, data_dir):
    """Same seed and data order: the two implementations follow the same trajectory (float32 ulps apart)."""
    _run(
        [
            "e1",
            "--data-dir",
            str(data_dir),
            "--epochs",
            "2",
            "--subset",
            "64",
            "--model",
            "mlp1",
            "--act",
            "leaky_tanh",
            "tanh",
            "--impl",
            "fused",
            "eager",
        ],
        tmp_path,
    )
    for act in ("leaky_tanh", "tanh"):
        f = torch.load(tmp_path / "e1" / f"mlp1-{act}-fused-s0" / "checkpoint.pt", weights_only=False)["model"]
        e = torch.load(tmp_path / "e1" / f"mlp1-{act}-eager-s0" / "checkpoint.pt", weights_only=False)["model"]
        for k in f:
            torch.testing.assert_close(f[k], e[k], rtol=1e-4, atol=1e-5)


def test_model_shapes_match_the_sources():
    # the post's parameter count for six Dense(512) hidden layers
    assert sum(p.numel() for p in build_model("mlp6", (1, 28, 28), 10, "sigmoid").parameters()) == 1_720_330
    assert sum(p.numel() for p in build_model("mlp1", (1, 28, 28), 10, "sigmoid").parameters()) == 407_050
    allcnn = build_model("allcnn", (3, 32, 32), 10, "elu", init="normal0.05")
    convs = [m for m in allcnn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (3, 96, 3),
        (96, 96, 3),
        (96, 192, 3),
        (192, 192, 3),
        (192, 192, 3),
        (192, 192, 3),
        (192, 192, 3),
        (192, 192, 1),
        (192, 10, 1),
    ]
    assert all(c.bias is None for c in convs)
    assert 0.045 < torch.cat([c.weight.flatten() for c in convs]).std() < 0.055
    assert allcnn(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    inc = build_model("inception", (3, 28, 28), 100, "relu")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in inc.modules())
    assert inc(torch.randn(1, 3, 28, 28)).shape == (1, 100)


def _longest_conv_path(module):
    """Depth in conv layers along the longest path, counted on the module tree."""
    from train.models import ConvAct, InceptionA, InceptionB

    if isinstance(module, ConvAct):
        return 1
    if isinstance(module, (InceptionA, InceptionB)):
        return max(_longest_conv_path(c) for c in module.children())
    if isinstance(module, torch.nn.Sequential) or hasattr(module, "features"):
        return sum(_longest_conv_path(c) for c in module.children())
    return 0


def test_inception_is_33_layers_deep():
    inc = build_model("inception", (3, 28, 28), 100, "relu")
    assert _longest_conv_path(inc.features) + 1 == 34  # 33 convs + the FC layer


@pytest.mark.parametrize(
    "flags,amp,channels_last", [([], None, True), (["--amp", "--no-channels-last"], "bfloat16", False)]
)
def test_cpu_precision_and_layout_options(tmp_path, data_dir, flags, amp, channels_last):
    """E3's CPU speed-ups: channels-last by default for the conv nets, bfloat16 autocast on request.
    Either way the run trains (finite loss) and says what it used, with its throughput."""
    argv = ["e3", "--data-dir", str(data_dir), "--epochs", "1", "--subset", "4", "--test-subset", "4"]
    _run([*argv, "--batch-size", "4", "--act", "softsign", "--no-report", *flags], tmp_path)
    s = _summaries(tmp_path, "e3")["allcnn-softsign-fused-s0"]
    assert s["amp"] == amp and s["channels_last"] is channels_last
    assert s["images_per_s"] > 0 and s["final_train_acc"] is not None
    steps = list(csv.DictReader(open(tmp_path / "e3" / "allcnn-softsign-fused-s0" / "steps.csv")))
    assert all(float(r["loss"]) == float(r["loss"]) for r in steps)


def test_amp_dtype_per_device(monkeypatch):
    from train.loop import amp_dtype_for

    assert amp_dtype_for(torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert amp_dtype_for(torch.device("cuda")) == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # pre-Ampere: float16 + scaler
    assert amp_dtype_for(torch.device("cuda", 0)) == torch.float16
