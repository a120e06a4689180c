"""Coverage (unbiased pass@k and the first-n share), each vote's limit (Theorems 1-2), the coverage fit and the lines
they add to the error-vs-FLOPs figure, on hand-made inputs whose answers are known."""
import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest

from infscale.evaluation.evaluation import limit_correct, metrics_rows, problem_correct, vote_limit
from infscale.evaluation.flops import ModelShape
from infscale.evaluation.pass_at_k import pass_at_k, problem_coverage, right_flags
from infscale.reporting.coverage import coverage_fit_table, fit_coverage
from infscale.reporting.plotting import draw_error_vs_flops
from infscale.reporting.report import seed_summary

POLICY = ModelShape(non_embedding_params=1000, n_layer=2, d_attn=8)
AGGS = ["majority", "weighted_majority", "best_of_n"]


def cand(answer, score=0.5):
    return {"text": f"The answer is: {answer} ки", "answer": answer, "tokens": 5, "step_scores": [score],
            "prm_tokens": 9}


def rec(answers, scores=None, reference="5", pid="p", level=None):
    scores = scores or [0.5] * len(answers)
    return {"id": pid, "reference": reference, "level": level, "prompt_tokens": 4,
            "candidates": [cand(a, s) for a, s in zip(answers, scores)]}


def rows_of(records, budgets, strategy="sampling"):
    return metrics_rows(records, dataset="toy", model="m", strategy=strategy, seed=0, budgets=budgets,
                        aggregations=AGGS, reduction="last", grader="toy", policy=POLICY, prm=None)


@pytest.mark.parametrize("n_samples, n_correct", [(5, 2), (5, 0), (5, 5), (6, 1), (7, 3)])
def test_pass_at_k_is_the_share_of_k_subsets_with_a_right_one(n_samples, n_correct):
    right = [True] * n_correct + [False] * (n_samples - n_correct)
    for k in range(1, n_samples + 1):
        subsets = list(itertools.combinations(right, k))
        brute = sum(any(s) for s in subsets) / len(subsets)
        assert pass_at_k(n_samples, n_correct, k) == pytest.approx(brute, abs=1e-12)


def test_pass_at_k_known_values_and_bad_input():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4) and pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 4) == 1.0  # any 4 of 5 hold one of the 2 right ones
    for bad in ((5, 6, 1), (5, 2, 0), (5, 2, 6), (5, -1, 1)):
        with pytest.raises(ValueError, match="pass@k"):
            pass_at_k(*bad)


def test_problem_coverage_reads_all_samples_or_the_first_n():
    right = right_flags(rec(["7", "7", "5", None]), "toy")  # one right of four drawn, third in order
    assert right == [False, False, True, False]
    assert problem_coverage(right, 1, tree=False) == (pytest.approx(0.25), 0.0)
    assert problem_coverage(right, 3, tree=False) == (pytest.approx(0.75), 1.0)
    assert problem_coverage(right, 2, tree=True) == (1.0, 1.0)  # a tree search: any of its candidates
    with pytest.raises(ValueError, match="budget 5 but 4 candidates"):
        problem_coverage(right, 5, tree=False)


def random_records(seed, count=12, n_samples=8):
    rng = random.Random(seed)
    return [rec([rng.choice(["5", "7", "9", None]) for _ in range(n_samples)],
                [rng.random() for _ in range(n_samples)], pid=str(i)) for i in range(count)]


@pytest.mark.parametrize("seed", range(5))
def test_coverage_never_falls_with_n_and_first_n_bounds_every_aggregation(seed):
    budgets = [1, 2, 3, 4, 6, 8]
    rows = pd.DataFrame(rows_of(random_records(seed), budgets))
    for _, g in rows.groupby("aggregation"):
        g = g.sort_values("n")
        assert (np.diff(g["coverage"]) >= -1e-12).all() and (np.diff(g["coverage_first_n"]) >= 0).all()
    # the first n candidates hold a right one wherever an aggregation at n picks a right one
    assert (rows["coverage_first_n"] >= rows["accuracy"] - 1e-12).all()
    top = rows[rows["n"] == 8]  # at the largest budget both read every sample
    assert np.allclose(top["coverage"], top["coverage_first_n"])


def test_unbiased_coverage_can_fall_below_a_vote_in_one_run_but_not_in_expectation():
    # the one right candidate comes first: a vote at n = 1 is right, but pass@1 over the 4 drawn is 1/4
    r = rec(["5", "7", "9", "11"], [0.9, 0.1, 0.2, 0.3])
    row = next(x for x in rows_of([r], [1]) if x["aggregation"] == "majority")
    assert row["accuracy"] == 1.0 and row["coverage"] == pytest.approx(0.25) and row["coverage_first_n"] == 1.0
    # over every order of the samples (they are exchangeable), the mean accuracy of each aggregation at n stays
    # below the unbiased coverage, and the mean first-n coverage equals it
    r = rec(["5", "7", "7", "5", "9"], [0.9, 0.4, 0.8, 0.2, 0.6])
    orders = list(itertools.permutations(r["candidates"]))
    for n in range(1, 6):
        cov = problem_coverage(right_flags(r, "toy"), n, tree=False)[0]
        first = np.mean([problem_coverage(right_flags({**r, "candidates": list(o)}, "toy"), n, tree=False)[1]
                         for o in orders])
        assert first == pytest.approx(cov)
        for agg in AGGS:
            acc = np.mean([problem_correct({**r, "candidates": list(o)}, n, agg, "toy", "last") for o in orders])
            assert acc <= cov + 1e-12


def test_greedy_coverage_is_its_accuracy_and_a_tree_search_counts_any_right_candidate():
    greedy = [rec(["5"], pid="a"), rec(["7"], pid="b"), rec([None], pid="c")]
    for row in rows_of(greedy, [1], strategy="greedy"):
        assert row["coverage"] == row["coverage_first_n"] == row["accuracy"] == pytest.approx(1 / 3)
        assert math.isnan(row["vote_limit"])
    tree = [{**rec(["7", "5", "7"], pid="a"), "tree": [], "cost": {"decode": [[4, 3]], "prm_tokens": [8]}},
            {**rec(["7", "9"], pid="b"), "tree": [], "cost": {"decode": [[4, 3]], "prm_tokens": [8]}}]
    rows = rows_of(tree, [2], strategy="rebase")
    assert {r["coverage"] for r in rows} == {0.5} and {r["coverage_first_n"] for r in rows} == {0.5}
    majority = next(r for r in rows if r["aggregation"] == "majority")
    assert majority["accuracy"] == 0.0  # the vote picks 7 in both: coverage is the ceiling, not the vote


def test_vote_limits_of_a_made_up_problem_set():
    problems = [
        rec(["5", "5", "7"], [0.2, 0.2, 0.9], pid="mode right, weight wrong"),  # 5: 0.4 in total, 7: 0.9
        rec(["7", "7", "5"], [0.1, 0.1, 0.9], pid="mode wrong, weight right"),  # 7: 0.2, 5: 0.9
        rec(["7", "7", "7", "5"], [0.3, 0.3, 0.3, 0.95], pid="many wrong, one heavy right"),  # 7: 0.9, 5: 0.95
        rec(["9", None, "9"], [0.5, 1.0, 0.5], pid="no right answer"),
    ]
    assert [limit_correct(r, r["candidates"], "majority", "toy", "last") for r in problems] == [1, 0, 0, 0]
    assert [limit_correct(r, r["candidates"], "weighted_majority", "toy", "last") for r in problems] == [0, 1, 1, 0]
    assert vote_limit(problems, "majority", "toy", "last") == 0.25
    assert vote_limit(problems, "weighted_majority", "toy", "last") == 0.5
    with pytest.raises(ValueError, match="no limit theorem for 'best_of_n'"):
        limit_correct(problems[0], problems[0]["candidates"], "best_of_n", "toy", "last")
    rows = rows_of([r for r in problems if len(r["candidates"]) == 3], [1, 2, 3])  # the same at every n
    by = {(r["n"], r["aggregation"]): r["vote_limit"] for r in rows}
    assert {by[n, "majority"] for n in (1, 2, 3)} == {1 / 3} and {by[n, "weighted_majority"] for n in (1, 2, 3)} == {1 / 3}
    assert all(math.isnan(by[n, "best_of_n"]) for n in (1, 2, 3))


def test_the_fit_recovers_a_and_b_of_synthetic_coverage():
    k = np.array([1, 2, 4, 8, 16, 32, 64])
    fit = fit_coverage(k, np.exp(-1.3 * k ** -0.45))
    assert fit.a == pytest.approx(-1.3, rel=1e-6) and fit.b == pytest.approx(-0.45, rel=1e-6)
    assert fit.rmse_log < 1e-9 and fit.n_points == 7 and fit.n_dropped == 0 and fit.reason == ""
    assert fit.coverage([4])[0] == pytest.approx(math.exp(-1.3 * 4 ** -0.45))
    # noisy data: near the truth, with a positive error
    rng = np.random.default_rng(0)
    noisy = np.exp(-0.8 * k ** -0.3 * np.exp(rng.normal(0, 0.02, k.size)))
    fit = fit_coverage(k, noisy)
    assert fit.a == pytest.approx(-0.8, rel=0.05) and fit.b == pytest.approx(-0.3, abs=0.03) and fit.rmse_log > 0


def test_the_fit_drops_coverage_zero_and_one_and_says_when_too_few_points_are_left():
    fit = fit_coverage([1, 2, 4, 8], [0.0, math.exp(-0.5 * 2 ** -0.5), math.exp(-0.5 * 4 ** -0.5), 1.0])
    assert fit.n_points == 2 and fit.n_dropped == 2 and fit.a == pytest.approx(-0.5) and fit.b == pytest.approx(-0.5)
    fit = fit_coverage([1, 2, 4], [0.5, 1.0, 1.0])
    assert math.isnan(fit.a) and math.isnan(fit.b) and fit.n_points == 1 and fit.n_dropped == 2
    assert "1 budget(s) with 0 < coverage < 1, need 2" in fit.reason
    assert math.isnan(fit_coverage([], []).a)
    with pytest.raises(ValueError, match="coverages finite in"):
        fit_coverage([1, 2], [0.5, 1.5])
    with pytest.raises(ValueError, match="2 budgets but 1"):
        fit_coverage([1, 2], [0.5])


def synthetic_metrics(models=("small", "large"), ks=(1, 2, 4, 8, 16)):
    """Sampling rows, two seeds, three aggregations, coverage exactly exp(a k^b) (mean of the seeds), greedy and
    REBASE rows beside them."""
    truth = {"small": (-1.5, -0.4), "large": (-0.7, -0.6)}
    rows = []
    for m in models:
        a, b = truth[m]
        for strategy, budgets in (("greedy", [1]), ("sampling", ks), ("rebase", [2, 4])):
            for n in budgets:
                for seed, jitter in ((0, -0.01), (1, 0.01)):
                    cov = math.exp(a * n ** b) + (jitter if strategy == "sampling" else 0)
                    for agg in AGGS:
                        acc = cov - 0.1 - 0.05 * AGGS.index(agg)
                        limit = {"majority": 0.3, "weighted_majority": 0.35}.get(agg, math.nan)
                        rows.append({"dataset": "toy", "model": m, "strategy": strategy, "n": n, "seed": seed,
                                     "aggregation": agg, "subset": "all", "n_problems": 10, "accuracy": acc,
                                     "error": 1 - acc, "coverage": cov, "coverage_first_n": cov,
                                     "vote_limit": limit if strategy == "sampling" else math.nan,
                                     "params": 1000 if m == "small" else 5000, "policy_prefill_flops": 10.0 * n,
                                     "policy_decode_flops": 90.0 * n, "prm_flops": 30.0 * n,
                                     "policy_flops": 100.0 * n, "total_flops": 130.0 * n, "generated_tokens": 5.0 * n})
    return pd.DataFrame(rows), truth


def test_coverage_fit_table_per_dataset_and_model():
    metrics, truth = synthetic_metrics()
    t = coverage_fit_table(metrics)
    assert list(t.columns) == ["dataset", "model", "a", "b", "rmse_log", "n_points", "n_dropped", "reason"]
    assert list(t["model"]) == ["large", "small"] and (t["n_points"] == 5).all()
    for _, r in t.iterrows():  # the seeds' jitter cancels in the mean
        assert (r["a"], r["b"]) == pytest.approx(truth[r["model"]], rel=1e-6)
    with pytest.raises(ValueError, match="no coverage column"):
        coverage_fit_table(metrics.drop(columns="coverage"))


def test_the_figure_draws_the_oracle_and_each_votes_limit_on_the_sampling_panel():
    metrics, _ = synthetic_metrics(models=("small",))
    fig, _, numbers = draw_error_vs_flops(seed_summary(metrics), "toy", "small")
    sampling, rebase = fig.axes
    assert sampling.get_title() == "Sampling" and rebase.get_title() == "REBASE"
    lines = {ln.get_label(): ln for ln in sampling.get_lines()}
    oracle = lines["Oracle (1 - coverage)"]
    assert oracle.get_linestyle() == "--"
    expected = 100 * (1 - np.exp(-1.5 * np.array([1, 2, 4, 8, 16]) ** -0.4))
    assert np.allclose(oracle.get_ydata(), expected) and np.allclose(oracle.get_xdata(), [100, 200, 400, 800, 1600])
    for label, limit in (("Majority vote limit, n→∞ (Thm 1)", 0.3), ("Weighted majority vote limit, n→∞ (Thm 2)", 0.35)):
        line = lines[label]
        assert line.get_linestyle() == ":" and np.allclose(line.get_ydata(), 100 * (1 - limit))
    assert not [ln for ln in rebase.get_lines() if "Oracle" in ln.get_label() or "limit" in ln.get_label()]
    legend = [t.get_text() for t in sampling.get_legend().get_texts()]
    assert "Oracle (1 - coverage)" in legend and "Majority vote limit, n→∞ (Thm 1)" in legend
    assert set(numbers[numbers["panel"] == "sampling"]["aggregation"]) >= {"oracle", "majority_limit"}
    limit_rows = numbers[numbers["aggregation"] == "majority_limit"]
    assert list(limit_rows["n"]) == [16] and limit_rows["error_mean_pct"].iloc[0] == pytest.approx(70)
    assert list(limit_rows["params"]) == [1000] and limit_rows["policy_flops"].isna().all()
    oracle_rows = numbers[numbers["aggregation"] == "oracle"].sort_values("n")
    assert np.allclose(oracle_rows["error_mean_pct"], expected)
    # metrics written before coverage existed still draw, without the added lines
    old, _, _ = draw_error_vs_flops(seed_summary(metrics.drop(columns=["coverage", "coverage_first_n",
                                                                        "vote_limit"])), "toy", "small")
    assert not [ln for ln in old.axes[0].get_lines() if "Oracle" in ln.get_label() or "limit" in ln.get_label()]
