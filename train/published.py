"""The sources' numbers (REPRODUCE.md), shown beside ours in reports. Not measured here."""

# E1 (blog post, 2017): test accuracy after 5 epochs, by (model, activation).
E1 = {
    ("mlp1", "identity"): {"final_test_acc": 0.918, "test_acc_per_epoch": [0.9178, 0.9196, 0.9186, 0.9245, 0.9185]},
    ("mlp1", "sigmoid"): {"final_test_acc": 0.967, "test_acc_per_epoch": [0.9237, 0.9409, 0.9550, 0.9629, 0.9668]},
    ("mlp6", "identity"): {"final_test_acc": 0.877},
    ("mlp6", "sigmoid"): {"final_test_acc": 0.955, "test_acc_per_epoch": [0.8949, 0.9264, 0.9408, 0.9282, 0.9548]},
}

# E2 (lecture slides): mini-batch steps until test accuracy first reaches a threshold.
E2 = {
    ("mlp1", "sigmoid"): {
        "steps_to": {0.80: 267, 0.90: 3852, 0.95: 17113},
        "mean_test_acc": 0.974,
        "sec_per_epoch": 0.0224,
    },
    ("mlp1", "tanh"): {
        "steps_to": {0.80: 174, 0.90: 1254, 0.95: 6417},
        "mean_test_acc": 0.975,
        "sec_per_epoch": 0.0236,
    },
    ("mlp1", "relu"): {"steps_to": {0.80: 154, 0.90: 765, 0.95: 3705}, "mean_test_acc": 0.975, "sec_per_epoch": 0.0227},
}

_pct = lambda s: [float(v) / 100 for v in s.split()]  # noqa: E731
# E3 (blog post, 2018): accuracy per epoch, epochs 0..20.
E3 = {
    ("allcnn", "tanh"): {
        "train_acc_per_epoch": _pct(
            "30.0 36.9 41.9 45.7 49.8 52.5 55.1 57.1 58.8 60.5 61.7 63.1 64.1 65.0 65.9 66.8 67.2 68.1 68.6 69.3 69.7"
        ),
        "test_acc_per_epoch": _pct(
            "34.8 40.4 44.7 49.8 51.6 55.9 55.6 57.6 59.5 62.1 61.4 63.3 63.5 64.6 65.1 66.2 65.9 66.7 67.9 68.3 68.6"
        ),
    },
    ("allcnn", "softsign"): {
        "train_acc_per_epoch": _pct(
            "25.0 29.9 32.4 35.3 38.1 41.2 43.4 45.7 47.4 49.0 50.5 52.1 53.3 54.9 55.6 56.8 57.4 58.0 59.2 60.1 60.5"
        ),
        "test_acc_per_epoch": _pct(
            "27.7 32.6 35.3 38.1 40.8 42.1 44.8 49.1 49.3 51.8 52.0 53.0 54.7 54.9 55.4 57.4 58.2 58.2 58.3 60.4 61.5"
        ),
    },
    ("allcnn", "elu"): {
        "train_acc_per_epoch": _pct(
            "45.8 65.7 74.6 79.5 82.9 85.3 87.4 88.7 90.2 91.4 92.4 93.2 93.9 94.6 95.0 95.4 95.7 96.1 96.4 96.7 96.7"
        ),
        "test_acc_per_epoch": _pct(
            "61.7 73.5 78.5 80.1 83.3 83.9 85.0 85.9 86.0 86.6 87.0 86.3 86.2 86.6 86.9 86.9 87.9 86.5 87.9 87.4 86.9"
        ),
    },
}
for _v in E3.values():
    _v["final_test_acc"] = _v["test_acc_per_epoch"][-1]
    _v["final_train_acc"] = _v["train_acc_per_epoch"][-1]

# E4 (Xu, Huang, Li 2016): final train / test accuracy on CIFAR-100; sigmoid does not train.
E4 = {
    ("inception", "sigmoid"): {"final_train_acc": None, "final_test_acc": None, "note": "N/A (does not train)"},
    ("inception", "rescaled_sigmoid"): {"final_train_acc": 0.8939, "final_test_acc": 0.5911},
    ("inception", "tanh"): {"final_train_acc": 0.9694, "final_test_acc": 0.6199},
    ("inception", "relu"): {"final_train_acc": 0.9917, "final_test_acc": 0.6791},
    ("inception", "leaky_tanh"): {"final_train_acc": 0.9975, "final_test_acc": 0.7043},
    ("inception", "leaky_relu"): {"final_train_acc": 0.9985, "final_test_acc": 0.7064},
}

PUBLISHED = {"e1": E1, "e2": E2, "e3": E3, "e4": E4}
SOURCES = {
    "e1": "blog post (2017), MNIST MLP; Keras-style log",
    "e2": "lecture slides, MNIST speed of learning",
    "e3": "blog post (2018), All-CNN-C on CIFAR-10 with AMSGrad",
    "e4": "Xu, Huang, Li 2016, 'Revise Saturated Activation Functions', CIFAR-100",
    "depth": "Xu et al. 2016, section 2 (claim only, no published numbers)",
}


def published(experiment: str, model: str, act: str) -> dict | None:
    return PUBLISHED.get(experiment, {}).get((model, act))


def same_epoch(pub: dict | None, split: str, epochs_done: int, epochs_config: int) -> tuple[float | None, str]:
    """The published ``split`` ('test' or 'train') accuracy after as many epochs as ours, and how to
    show it: from the per-epoch list where the source has one (E1 counts epochs from 1, E3's log from
    0; both list the accuracy after each epoch, so ours after k epochs is entry k-1), the final value
    only if we ran the source's whole schedule. Otherwise (None, 'final after N') so a table never
    sets a 1-epoch result beside a 5-epoch one without saying so."""
    pub = pub or {}
    if pub.get("note"):
        return None, pub["note"]
    per_epoch = pub.get(f"{split}_acc_per_epoch")
    if per_epoch and 1 <= epochs_done <= len(per_epoch):
        return per_epoch[epochs_done - 1], ""
    final = pub.get(f"final_{split}_acc")
    if final is None:
        return None, ""
    if epochs_done == epochs_config:
        return final, ""
    return None, f"{final:.3f} after {epochs_config} epochs"
