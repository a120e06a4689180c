"""The paired bootstrap over problems and seeds (infscale.resampling): row 0 the plain estimate, draws that weigh
problems and seeds the same way for every curve of a data set, and the percentile interval."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from infscale.evaluation.resampling import ProblemBootstrap, interval


def outcomes(curves, dataset="d", levels=None):
    """Per-problem rows: {(model, strategy, aggregation, n, seed): [correct per problem]}."""
    rows = []
    for (m, s, agg, n, seed), correct in curves.items():
        for p, c in enumerate(correct):
            rows.append(dict(dataset=dataset, model=m, strategy=s, seed=seed, n=n, aggregation=agg, id=f"p{p}",
                             level=(levels[p] if levels else 1), correct=c))
    return pd.DataFrame(rows)


def expected_errors(pw, sw, c):
    """1 - (weighted right answers) / (weighted count), per draw: c (problems, seeds) of 0/1, weights per draw."""
    out = []
    for p, s in zip(pw, sw):
        right = sum(p[i] * s[j] * c[i][j] for i in range(len(p)) for j in range(len(s)))
        total = sum(p) * sum(s)
        out.append(1 - right / total if total else np.nan)
    return np.array(out)


def test_bootstrap_row_zero_is_the_plain_mean_and_draws_are_paired():
    rows = [dict(dataset="d", model="m", strategy=s, seed=seed, n=1, aggregation="majority", id=f"p{p}", level=1,
                 correct=int(p < k)) for s, k in (("a", 6), ("b", 4)) for seed in (0, 1) for p in range(10)]
    boot = ProblemBootstrap(pd.DataFrame(rows), draws=300, seed=1)
    _, ea = boot.curve("d", "m", "a", "majority")
    _, eb = boot.curve("d", "m", "b", "majority")
    assert ea[0, 0] == pytest.approx(0.4) and eb[0, 0] == pytest.approx(0.6)
    # b is never right where a is wrong: in every paired draw a's error is at most b's
    assert (ea[1:, 0] <= eb[1:, 0] + 1e-12).all() and ea[1:, 0].std() > 0
    est, lo, hi = interval(eb[:, 0] - ea[:, 0])
    assert est == pytest.approx(0.2) and 0 <= lo <= est <= hi and hi > lo


def test_each_draw_weighs_problems_and_seeds_by_resampling_counts():
    # 3 problems x 2 seeds, outcomes differ by problem and by seed
    c = [[1, 0], [0, 0], [1, 1]]
    curves = {("m", "s", "majority", 4, seed): [c[p][seed] for p in range(3)] for seed in (0, 1)}
    boot = ProblemBootstrap(outcomes(curves), draws=400, seed=3)
    ns, err = boot.curve("d", "m", "s", "majority")
    pw, sw = boot._weights["d"]
    assert list(ns) == [4] and err.shape == (401, 1)
    # row 0 weighs everything once; each draw is a resample with replacement (counts summing to the sizes)
    assert (pw[0] == 1).all() and (sw[0] == 1).all()
    assert (pw[1:].sum(axis=1) == 3).all() and (sw[1:].sum(axis=1) == 2).all()
    assert {tuple(r) for r in sw[1:]} == {(2, 0), (1, 1), (0, 2)}  # every seed is sometimes left out, sometimes twice
    assert (pw[1:] == 0).any(axis=0).all() and (pw[1:] == 2).any(axis=0).all()
    # each problem and each seed is drawn with equal chance: mean count 1
    assert pw[1:].mean(axis=0) == pytest.approx(np.ones(3), abs=0.15)
    assert sw[1:].mean(axis=0) == pytest.approx(np.ones(2), abs=0.15)
    assert err[:, 0] == pytest.approx(expected_errors(pw, sw, c))
    assert err[0, 0] == pytest.approx(1 - 3 / 6)


def test_the_same_seed_gives_the_same_draws_whatever_the_rows_order():
    curves = {(m, "s", "majority", 1, 0): ([1, 0, 1, 0, 0] if m == "a" else [0, 1, 1, 0, 1]) for m in ("a", "b")}
    df = pd.concat([outcomes(curves, "x"), outcomes(curves, "w")], ignore_index=True)
    one = ProblemBootstrap(df, draws=50, seed=2)
    two = ProblemBootstrap(df.iloc[::-1].reset_index(drop=True), draws=50, seed=2)
    for ds in ("w", "x"):
        assert np.array_equal(one.curve(ds, "a", "s", "majority")[1], two.curve(ds, "a", "s", "majority")[1])
    # the data sets get their own draws; another seed other draws
    assert not np.array_equal(one.curve("w", "a", "s", "majority")[1], one.curve("x", "a", "s", "majority")[1])
    other = ProblemBootstrap(df, draws=50, seed=4)
    assert not np.array_equal(one.curve("w", "a", "s", "majority")[1], other.curve("w", "a", "s", "majority")[1])
    # problem ids given as numbers in one file and as text in another are the same problems
    mixed = df.copy()
    mixed["id"] = mixed["id"].astype(object)
    mixed.loc[mixed["model"] == "a", "id"] = mixed.loc[mixed["model"] == "a", "id"].str[1:].astype(int)
    mixed["id"] = mixed["id"].where(mixed["model"] == "a", mixed["id"].astype(str).str[1:])
    got = ProblemBootstrap(mixed, draws=50, seed=2)
    assert np.array_equal(got.curve("x", "b", "s", "majority")[1], one.curve("x", "b", "s", "majority")[1])


def test_budgets_come_out_ascending_whatever_the_rows_order():
    curves = {("m", "s", "majority", n, 0): [1] * k + [0] * (4 - k) for n, k in ((8, 4), (1, 1), (2, 2))}
    df = outcomes(curves)
    boot = ProblemBootstrap(df, draws=5)
    ns, err = boot.curve("d", "m", "s", "majority")
    assert list(ns) == [1, 2, 8] and err[0] == pytest.approx([0.75, 0.5, 0.0])


def test_missing_outcomes_subsets_and_seeds():
    # p0, p1 easy (level 1), p2 hard (4); seeds 0, 1, 2 in the data set, curve "s" only ran seeds 0 and 1
    levels = [1, 1, 4]
    c = {0: [1, 0, 1], 1: [1, 1, 0], 2: [0, 0, 0]}
    curves = {("m", "full", "majority", 1, seed): c[seed] for seed in (0, 1, 2)}
    curves.update({("m", "s", "majority", 1, seed): c[seed] for seed in (0, 1)})
    # at n=2 p1 lacks seed 1's outcome: p1 is left out there, the others count
    curves.update({("m", "s", "majority", 2, 0): c[0], ("m", "s", "majority", 2, 1): c[1][:1]})
    df = outcomes(curves, levels=levels)
    df = df[~((df["n"] == 2) & (df["seed"] == 1) & (df["id"] == "p2"))]  # p2 lacks seed 1 at n=2 instead
    df = pd.concat([df, outcomes({("m", "s", "majority", 2, 1): [1, 1]}, levels=levels)], ignore_index=True)
    df = pd.concat([df, outcomes({("m", "s", "majority", 3, seed): c[seed] for seed in (0, 1)}, levels=levels)])
    boot = ProblemBootstrap(df, draws=300, seed=0)
    pw, sw = boot._weights["d"]
    ns, err = boot.curve("d", "m", "s", "majority")
    assert list(ns) == [1, 2, 3]
    # n=1: seeds 0 and 1 weighted by the draw's counts; a draw with neither weighs both once
    v = sw[:, :2].astype(float)
    v[v.sum(axis=1) == 0] = 1.0
    assert ((sw[:, :2].sum(axis=1) == 0).any() and (sw[:, :2].sum(axis=1) == 1).any())
    cs = [[c[0][p], c[1][p]] for p in range(3)]
    assert err[:, 0] == pytest.approx(expected_errors(pw, v, cs))
    # n=2: p2 lacks seed 1, so only p0 and p1 count
    cs2 = [[c[0][0], 1], [c[0][1], 1]]
    assert err[:, 1] == pytest.approx(expected_errors(pw[:, :2], v, cs2), nan_ok=True)
    # subsets: the hard one is p2 alone; a draw without p2 is undefined (NaN), quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ns_h, hard = boot.curve("d", "m", "full", "majority", subset="hard")
    assert hard[0, 0] == pytest.approx(1 - 1 / 3)
    gone = pw[:, 2] == 0
    assert gone.any() and np.isnan(hard[gone, 0]).all() and not np.isnan(hard[~gone, 0]).any()
    easy = boot.curve("d", "m", "full", "majority", subset="easy")[1]
    assert easy[0, 0] == pytest.approx(1 - 3 / 6)
    # a subset with no outcome at a budget leaves that budget NaN and the next ones computed
    assert np.isnan(boot.curve("d", "m", "s", "majority", subset="hard")[1][:, 1]).all()
    hard_s = boot.curve("d", "m", "s", "majority", subset="hard")[1]
    assert hard_s[0, 0] == pytest.approx(0.5) and hard_s[0, 2] == pytest.approx(0.5)


def test_subsets_follow_each_problems_level_whatever_the_rows_order():
    # p0..p3 at levels 5, 1, 4, 2, listed last problem first: hard = p0, p2 (both right), easy = p1, p3 (wrong)
    df = outcomes({("m", "s", "majority", 1, 0): [1, 0, 1, 0]}, levels=[5, 1, 4, 2]).iloc[::-1]
    boot = ProblemBootstrap(df, draws=3)
    assert list(boot.subset_mask("d", "hard")) == [True, False, True, False]
    assert boot.curve("d", "m", "s", "majority", subset="hard")[1][0, 0] == 0.0
    assert boot.curve("d", "m", "s", "majority", subset="easy")[1][0, 0] == 1.0


def test_has_and_a_curve_that_was_not_run():
    df = outcomes({("m", "s", "majority", 1, 0): [1, 0]}).assign(kind="budget")
    df = pd.concat([df, outcomes({("m", "s", "majority", 2, 0): [1, 1]}).assign(kind="limit_predicted")])
    boot = ProblemBootstrap(df, draws=7)
    assert boot.has("d", "m", "s", "majority") and not boot.has("d", "m", "s", "weighted_majority")
    assert boot.has("d", "m", "s", "majority", "limit_predicted")
    assert list(boot.curve("d", "m", "s", "majority", kind="limit_predicted")[0]) == [2]
    ns, err = boot.curve("d", "m", "other", "majority")
    assert ns.dtype.kind == "i" and len(ns) == 0 and err.shape == (8, 0)


def test_interval_is_the_estimate_and_the_central_percentiles_of_the_draws():
    draws = np.random.default_rng(0).permutation(np.arange(1.0, 101.0))  # 1..100 in any order
    values = np.concatenate([[42.0], draws])
    # 95%: the 2.5th percentile sits at rank 0.025 x 99 = 2.475: the lower value, 3; 97.5th at 96.525: higher, 98
    assert interval(values) == (42.0, 3.0, 98.0)
    # 90%: ranks 4.95 -> 5 (lower) and 94.05 -> 96 (higher)
    assert interval(values, 0.9) == (42.0, 5.0, 96.0)
    # NaN draws are left out, +-inf count; a list (None: undefined) works too
    assert interval([1.0, np.nan, 2.0, np.nan]) == (1.0, 2.0, 2.0)
    assert interval([0.5, -np.inf, 1.0]) == (0.5, -np.inf, 1.0)
    assert interval([0.5, None, 1.0]) == (0.5, 1.0, 1.0)
    est, lo, hi = interval([0.3, np.nan])
    assert est == 0.3 and np.isnan(lo) and np.isnan(hi)
    est, lo, hi = interval(np.array([0.3]))  # no draws at all
    assert est == 0.3 and np.isnan(lo) and np.isnan(hi)
