import math

import pytest

from common.schedule import lr_factor, run_progress


def test_lr_factor_by_hand():
    # warm-up: linear from (almost) 0 to 1 over the first 10% of the run
    assert lr_factor("cosine", 0.05, warmup=0.1) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.0, warmup=0.1) == pytest.approx(1e-3)
    # after it, the decay spans the remaining 90%: halfway is progress 0.55
    assert lr_factor("cosine", 0.1, warmup=0.1) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.55, warmup=0.1) == pytest.approx(0.5)
    assert lr_factor("linear", 0.55, warmup=0.1) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.325, warmup=0.1) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    # the floor is where the decay ends, and it stays there
    assert lr_factor("cosine", 1.0, floor=0.05) == pytest.approx(0.05)
    assert lr_factor("linear", 0.5, floor=0.2) == pytest.approx(0.2 + 0.8 * 0.5)
    assert lr_factor("linear", 1.5, floor=0.2) == pytest.approx(0.2)
    assert lr_factor("constant", 0.9, warmup=0.1) == 1.0
    # held at 1 until 60% of the run, then the linear decay spans the last 40%
    assert lr_factor("linear", 0.3, hold=0.6) == 1.0
    assert lr_factor("linear", 0.8, hold=0.6) == pytest.approx(0.5)
    assert lr_factor("linear", 0.9, hold=0.6, floor=0.2) == pytest.approx(0.2 + 0.8 * 0.25)
    assert lr_factor("cosine", 0.05, warmup=0.1, hold=0.6) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.4, warmup=0.1, hold=0.6) == 1.0
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        lr_factor("step", 0.5)


def test_run_progress_is_the_budget_spent_first():
    assert run_progress(2.5, 10) == pytest.approx(0.25)
    # 15 of 30 minutes beats 2.5 of 10 epochs; 900 of 1000 steps beats both
    assert run_progress(2.5, 10, seconds=900, max_minutes=30) == pytest.approx(0.5)
    assert run_progress(2.5, 10, seconds=900, max_minutes=30, step=900, max_steps=1000) == pytest.approx(0.9)
    # budgets that are not set (0) do not count, and the share never passes 1
    assert run_progress(2.5, 10, seconds=10_000, max_minutes=0, step=5, max_steps=0) == pytest.approx(0.25)
    assert run_progress(12, 10) == 1.0
