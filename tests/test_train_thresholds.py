"""Iterations-to-threshold and the evaluation schedule, on hand-made series."""

from train.metrics import should_eval, steps_to_threshold


def test_first_crossing_and_interval():
    evals = [(1, 0.10), (2, 0.55), (4, 0.79), (8, 0.80), (16, 0.85), (32, 0.78), (64, 0.91), (128, 0.96)]
    assert steps_to_threshold(evals, 0.80) == {"step": 8, "prev_eval_step": 4}  # exactly equal counts
    assert steps_to_threshold(evals, 0.90) == {"step": 64, "prev_eval_step": 32}  # after a dip below
    assert steps_to_threshold(evals, 0.95) == {"step": 128, "prev_eval_step": 64}
    assert steps_to_threshold(evals, 0.97) is None
    assert steps_to_threshold(evals, 0.05) == {"step": 1, "prev_eval_step": 0}
    assert steps_to_threshold([], 0.5) is None


def test_a_later_dip_does_not_move_the_first_crossing():
    evals = [(10, 0.81), (20, 0.70), (30, 0.82)]
    assert steps_to_threshold(evals, 0.80)["step"] == 10


def test_log16_schedule():
    steps = [s for s in range(1, 5000) if should_eval(s, "log16")]
    assert steps[:31] == list(range(1, 32))  # every step below 32
    assert [s for s in steps if 32 <= s < 64] == list(range(32, 64, 2))
    assert [s for s in steps if 1024 <= s < 2048] == list(range(1024, 2048, 64))
    # 16 evaluations per doubling from 16 on
    assert sum(1 for s in steps if 2048 <= s < 4096) == 16


def test_fixed_and_epoch_schedules():
    assert [s for s in range(1, 40) if should_eval(s, "10")] == [10, 20, 30]
    assert not any(should_eval(s, "epoch") for s in range(0, 1000))
