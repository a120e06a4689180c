"""Compute-optimal model size (scaling.py): envelopes at budget edges, the best model per budget, the size fit.

test_reporting.py checks these on the synthetic metrics of the report; the cases here pin the edges."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from infscale.reporting.scaling import SizeFit, compute_optimal, default_budgets, fit_optimal_size, lower_envelope


def summary_rows(rows: list[tuple]) -> pd.DataFrame:
    """A seed_summary-shaped table from (model, params, policy_flops, error_mean[, strategy, aggregation, subset,
    dataset]) tuples."""
    out = []
    for r in rows:
        model, params, flops, err, *rest = r
        strategy, aggregation, subset, dataset = (list(rest) + ["sampling", "weighted_majority", "all", "toy"][len(rest):])
        out.append({"model": model, "params": params, "policy_flops": flops, "total_flops": 2 * flops,
                    "error_mean": err, "strategy": strategy, "aggregation": aggregation, "subset": subset,
                    "dataset": dataset})
    return pd.DataFrame(out)


# ---------------------------------------------------------------- lower_envelope

def test_a_point_is_reachable_at_its_own_budget_up_to_rounding():
    # Budgets built as exp(log(C)) or on a log grid land an ulp or so below C: the point must still count.
    x = 1e15 / 3
    for budget in (x, np.nextafter(x, 0), math.exp(math.log(x)), x * (1 - 1e-12)):
        assert lower_envelope([x, 10 * x], [0.4, 0.1], [budget])[0] == 0.4
    # ... but not a point that clearly needs more compute than the budget.
    assert math.isnan(lower_envelope([x], [0.4], [x * (1 - 1e-6)])[0])


def test_a_free_point_is_reachable_at_zero_budget():
    np.testing.assert_array_equal(lower_envelope([0.0, 5.0], [0.9, 0.2], [0.0, 4.0, 5.0]), [0.9, 0.9, 0.2])


def test_lower_envelope_skips_missing_points():
    # NaN error (a configuration without results) or FLOPs never wins and never makes the envelope NaN.
    x, e = [5.0, 10.0, np.nan, 20.0], [np.nan, 0.5, 0.0, 0.3]
    np.testing.assert_array_equal(lower_envelope(x, e, [5.0, 10.0, 30.0]), [np.nan, 0.5, 0.3])


def test_lower_envelope_without_points_is_all_nan():
    assert np.isnan(lower_envelope([], [], [1.0, 2.0])).all()
    assert np.isnan(lower_envelope([np.nan], [0.1], [1.0])).all()


def test_lower_envelope_takes_flops_as_python_ints_and_missing_values():
    # FLOPs computed with Python ints exceed int64 (2 * 7e9 params * 1e10 tokens); errors may be missing (None).
    x = [2 * 7 * 10**9 * 10**10, 10**21, 3 * 10**21]
    got = lower_envelope(x, [0.5, None, 0.2], [1.5e20, 1e21, 3e21])
    np.testing.assert_array_equal(got, [0.5, 0.5, 0.2])
    assert math.isnan(lower_envelope([None, 10**21], [0.1, 0.3], [5e20])[0])


def test_lower_envelope_unsorted_input():
    got = lower_envelope([40.0, 10.0, 20.0], [0.45, 0.5, 0.4], [10.0, 25.0, 50.0])
    np.testing.assert_array_equal(got, [0.5, 0.4, 0.4])


# ---------------------------------------------------------------- default_budgets

def test_default_budgets_span_the_positive_observed_flops_on_a_log_grid():
    b = default_budgets([0.0, np.nan, 10.0, 1000.0, 100.0])
    assert len(b) == 12
    assert b[0] == pytest.approx(10.0) and b[-1] == pytest.approx(1000.0)
    np.testing.assert_allclose(b[1:] / b[:-1], (1000 / 10) ** (1 / 11))
    assert len(default_budgets([1.0, 8.0], n_points=4)) == 4
    assert len(default_budgets([0.0, np.nan])) == 0
    np.testing.assert_allclose(default_budgets([100.0]), np.full(12, 100.0))  # one point: one budget
    # FLOPs in any unit (here PFLOPs, below 1) and as Python ints beyond int64
    assert default_budgets([0.5, 50.0])[0] == pytest.approx(0.5)
    assert default_budgets([10**20, 10**22])[-1] == pytest.approx(1e22)


# ---------------------------------------------------------------- compute_optimal

def test_compute_optimal_reads_only_the_requested_configuration():
    s = summary_rows([
        ("small", 1e6, 10.0, 0.5), ("big", 1e7, 100.0, 0.2),
        # other strategies, aggregations and subsets are better but must not be read
        ("small", 1e6, 10.0, 0.0, "rebase"), ("small", 1e6, 10.0, 0.0, "sampling", "majority"),
        ("small", 1e6, 10.0, 0.0, "sampling", "weighted_majority", "hard"),
    ])
    t = compute_optimal(s, budgets=[10.0, 100.0])
    assert list(t["best_model"]) == ["small", "big"] and list(t["best_error"]) == [0.5, 0.2]
    hard = compute_optimal(s, budgets=[10.0], subset="hard")
    assert list(hard["best_error"]) == [0.0]
    maj = compute_optimal(s, budgets=[10.0], aggregation="majority")
    assert list(maj["best_error"]) == [0.0]
    reb = compute_optimal(s, budgets=[10.0], strategy="rebase")
    assert list(reb["best_error"]) == [0.0]
    assert reb.attrs["strategy"] == "rebase"


def test_compute_optimal_tie_goes_to_the_smaller_model_whatever_the_row_order():
    s = summary_rows([("big", 3e7, 10.0, 0.3), ("small", 1e6, 10.0, 0.3), ("mid", 5e6, 10.0, 0.3)])
    t = compute_optimal(s, budgets=[10.0])
    assert t.loc[0, "best_model"] == "small" and t.loc[0, "best_params"] == 1e6
    # columns and attrs list models small -> large
    assert [c for c in t.columns if c.startswith("error_")] == ["error_small", "error_mid", "error_big"]
    assert t.attrs == {"x": "policy_flops", "strategy": "sampling", "aggregation": "weighted_majority",
                       "subset": "all", "models": {"small": 1000000, "mid": 5000000, "big": 30000000}}


def test_compute_optimal_budget_below_every_model():
    s = summary_rows([("small", 1e6, 10.0, 0.5), ("big", 1e7, 100.0, 0.2)])
    t = compute_optimal(s, budgets=[1.0, 50.0])
    assert pd.isna(t.loc[0, "best_model"]) and math.isnan(t.loc[0, "best_params"])
    assert math.isnan(t.loc[0, "best_error"])
    assert t.loc[1, "best_model"] == "small" and math.isnan(t.loc[1, "error_big"])
    # budgets given as ints still give a float budget column, and no budget reached: float NaN columns
    none = compute_optimal(s, budgets=[1, 2])
    assert none["budget"].dtype == float
    assert none["best_params"].dtype == float and none["best_params"].isna().all()
    assert none["best_error"].dtype == float and none["best_error"].isna().all()


def test_compute_optimal_on_another_flops_column():
    s = summary_rows([("small", 1e6, 10.0, 0.5), ("big", 1e7, 30.0, 0.2)])
    # total_flops is twice policy_flops here: at 40 only small fits in total FLOPs, big fits in policy FLOPs.
    assert compute_optimal(s, budgets=[40.0]).loc[0, "best_model"] == "big"
    t = compute_optimal(s, budgets=[40.0], x="total_flops")
    assert t.loc[0, "best_model"] == "small" and t.attrs["x"] == "total_flops"
    assert list(compute_optimal(s, x="total_flops")["budget"][[0, 11]]) == pytest.approx([20.0, 60.0])


def test_compute_optimal_refuses_mixed_datasets():
    s = summary_rows([("small", 1e6, 10.0, 0.5, "sampling", "weighted_majority", "all", "toy"),
                      ("small", 1e6, 10.0, 0.4, "sampling", "weighted_majority", "all", "gsm8k")])
    with pytest.raises(ValueError, match="several datasets"):
        compute_optimal(s)


# ---------------------------------------------------------------- fit_optimal_size

def test_fit_ignores_budgets_no_model_reaches():
    a, b = 1.19, 2.03
    ns = np.array([1e6, 1e7, 1e8])
    budgets = 10 ** (a * np.log10(ns) + b)
    table = pd.DataFrame({"budget": np.r_[1.0, 0.0, budgets], "best_params": np.r_[np.nan, 1e5, ns]})
    fit = fit_optimal_size(table)
    assert fit.n_points == 3 and fit.a == pytest.approx(a) and fit.b == pytest.approx(b)


def test_fit_r2_of_a_noisy_law():
    ns = np.array([1e6, 1e7, 1e8, 1e9])
    ly = 1.2 * np.log10(ns) + 2 + np.array([0.1, -0.1, -0.1, 0.1])
    fit = fit_optimal_size(pd.DataFrame({"budget": 10 ** ly, "best_params": ns}))
    r = np.corrcoef(np.log10(ns), ly)[0, 1]
    assert fit.r2 == pytest.approx(r ** 2) and 0.9 < fit.r2 < 1.0
    assert fit.reason == ""


def test_fit_with_two_sizes_and_budgets_within_a_decade():
    # Two optimal sizes are enough for a fit; budgets in any unit (PFLOPs below 1) and within one decade.
    budgets = np.array([0.2, 0.4, 0.8, 1.6])
    params = np.array([1e6, 1e6, 1e7, 1e7])
    fit = fit_optimal_size(pd.DataFrame({"budget": budgets, "best_params": params}))
    assert fit.n_points == 4 and math.isfinite(fit.a) and fit.reason == ""
    r = np.corrcoef(np.log10(params), np.log10(budgets))[0, 1]
    assert fit.r2 == pytest.approx(r ** 2)


def test_fit_on_a_single_budget_has_no_r2():
    fit = fit_optimal_size(pd.DataFrame({"budget": [1e9, 1e9], "best_params": [1e6, 1e7]}))
    assert math.isnan(fit.r2) and fit.n_points == 2


def test_fit_needs_two_distinct_sizes():
    one = fit_optimal_size(pd.DataFrame({"budget": [1e9, 1e10, 1e11], "best_params": [1e6, 1e6, np.nan]}))
    assert math.isnan(one.a) and math.isnan(one.b) and math.isnan(one.r2)
    assert one.n_points == 2 and one.reason == "fewer than 2 distinct optimal sizes over 2 budget points"


def test_size_fit_predicts_and_serialises():
    fit = SizeFit(a=2.0, b=1.0, r2=0.9, n_points=3)
    assert fit.n_opt(1e5) == pytest.approx(100.0)  # log10 C = 2 * log10 N + 1
    assert fit.n_opt(10**21) == pytest.approx(1e10)  # a budget as a Python int beyond int64
    assert fit.as_dict() == {"a": 2.0, "b": 1.0, "r2": 0.9, "n_points": 3, "reason": ""}
