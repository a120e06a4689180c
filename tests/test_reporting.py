"""Reporting layer: metrics loading, seed summaries, compute-optimal size, tables, plots (claims: test_claims.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infscale.reporting.plotting import plot_compute_optimal, plot_error_vs_flops
from infscale.reporting.report import REQUIRED_COLUMNS, load_metrics, seed_summary, to_markdown, write_table
from infscale.reporting.scaling import compute_optimal, fit_optimal_size, lower_envelope
from infscale.reporting.tables import TABLE1_COLUMNS, TABLE4_COLUMNS, table1, table4

PARAMS = {"tiny": 100_000, "small": 300_000, "base": 1_000_000}
# sampling error = e_inf + (e_1 - e_inf) / n: falls with n and saturates; larger models better
CURVES = {"tiny": (0.6, 0.40), "small": (0.5, 0.25), "base": (0.4, 0.10)}
NS = [1, 2, 4, 8, 16]
SEED_NOISE = {0: -0.01, 1: +0.01}
AGG_DELTA = {"majority": 0.0, "weighted_majority": -0.02, "best_of_n": 0.01}
TOKENS = 100


def cost(params: int) -> float:
    """Policy FLOPs of one sampled solution: 2 N per token."""
    return 2.0 * params * TOKENS


def make_metrics(models: tuple[str, ...] = ("tiny", "small", "base"), *, holds: bool = True,
                 rebase: bool = False, mcts: bool = False, subsets: bool = False,
                 saturate: bool = True) -> pd.DataFrame:
    """Synthetic metrics table. `holds=False` flips every effect the claims look for."""
    wmv = AGG_DELTA["weighted_majority"] * (1 if holds else -1)
    aggs = {**AGG_DELTA, "weighted_majority": wmv}
    # big models better (holds) or worse (fails): N_opt then grows, or stays at the smallest model
    curves = CURVES if holds else dict(zip(CURVES, reversed(list(CURVES.values()))))
    subs = {"all": (1.0, -0.08)}  # subset: (error scale, REBASE error delta)
    if subsets:
        subs["easy"] = (0.5, -0.01 if holds else -0.10)
        subs["hard"] = (1.2, -0.10 if holds else -0.01)
    rows = []

    def add(model: str, strategy: str, n: int, seed: int, agg: str, sub: str, err: float,
            flops: float) -> None:
        err = float(np.clip(err, 0.0, 1.0))
        rows.append(dict(dataset="toy", model=model, strategy=strategy, n=n, seed=seed,
                         aggregation=agg, subset=sub, n_problems=100, accuracy=1 - err, error=err,
                         params=PARAMS[model], policy_prefill_flops=0.1 * flops,
                         policy_decode_flops=0.9 * flops, prm_flops=0.5 * flops,
                         policy_flops=flops, total_flops=1.5 * flops, generated_tokens=TOKENS * n))

    for m in models:
        e1, einf = curves[m]
        c = cost(PARAMS[m])

        def samp(n: int) -> float:
            # saturate=False: gains per doubling grow instead of shrinking
            return einf + (e1 - einf) / n if saturate else e1 - 0.01 * np.log2(n) ** 2

        for seed, noise in SEED_NOISE.items():
            for sub, (scale, rdelta) in subs.items():
                for agg, d in aggs.items():
                    add(m, "greedy", 1, seed, agg, sub, scale * (e1 - 0.03) + noise, c)
                    for n in NS:
                        add(m, "sampling", n, seed, agg, sub, scale * samp(n) + d + noise, n * c)
                        if rebase:  # 10% more FLOPs per candidate, lower (or higher) error
                            rd = rdelta if holds or sub != "all" else +0.05
                            add(m, "rebase", n, seed, agg, sub, scale * samp(n) + d + rd + noise,
                                1.1 * n * c)
                        if mcts and sub == "all":
                            md = +0.05 if holds else -0.10
                            add(m, "mcts", n, seed, agg, sub, samp(n) + d + md + noise, 1.2 * n * c)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- report.py

def test_seed_summary_numbers() -> None:
    s = seed_summary(make_metrics())
    r = s[(s["model"] == "small") & (s["strategy"] == "sampling") & (s["n"] == 4)
          & (s["aggregation"] == "majority") & (s["subset"] == "all")]
    assert len(r) == 1
    r = r.iloc[0]
    expected = 0.25 + 0.25 / 4
    assert r["error_mean"] == pytest.approx(expected)
    assert r["error_min"] == pytest.approx(expected - 0.01)
    assert r["error_max"] == pytest.approx(expected + 0.01)
    assert r["error_std"] == pytest.approx(np.std([expected - 0.01, expected + 0.01], ddof=1))
    assert r["n_seeds"] == 2
    assert r["policy_flops"] == pytest.approx(4 * cost(300_000))
    assert r["params"] == 300_000
    # one row per (model, strategy, n, aggregation): 3 models x (1 greedy + 5 sampling) x 3 aggs
    assert len(s) == 3 * 6 * 3


def test_load_metrics_roundtrip_and_missing_column(tmp_path: Path) -> None:
    df = make_metrics()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    df[df["model"] == "tiny"].to_csv(a, index=False)
    df[df["model"] != "tiny"].to_csv(b, index=False)
    loaded = load_metrics([a, b])
    assert len(loaded) == len(df) and set(REQUIRED_COLUMNS) <= set(loaded.columns)
    bad = tmp_path / "bad.csv"
    df.drop(columns="prm_flops").to_csv(bad, index=False)
    with pytest.raises(ValueError) as exc:
        load_metrics([a, bad])
    assert "prm_flops" in str(exc.value) and "bad.csv" in str(exc.value)


def test_markdown_table_round_trip(tmp_path: Path) -> None:
    t = table4(seed_summary(make_metrics()))
    csv, md = tmp_path / "t" / "t4.csv", tmp_path / "t" / "t4.md"
    write_table(t, csv, md)
    lines = md.read_text().strip().splitlines()
    assert len(lines) == 2 + len(t)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == list(t.columns)
    assert set(lines[1].replace("|", "")) == {"-"}
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first[:2] == [t.iloc[0]["dataset"], t.iloc[0]["model"]]
    assert float(first[-1]) == pytest.approx(t.iloc[0]["best_of_n"], rel=1e-3)
    assert pd.read_csv(csv).shape == t.shape
    assert not list(tmp_path.glob("t/*.tmp"))  # temp files replaced, none left over
    # NaN renders empty, pipes are escaped
    assert to_markdown(pd.DataFrame({"a": [math.nan], "b": ["x|y"]})).splitlines()[2] == "|  | x\\|y |"


# ---------------------------------------------------------------- scaling.py

def test_lower_envelope_step_function() -> None:
    x, e = [10.0, 20.0, 40.0, 80.0], [0.5, 0.4, 0.45, 0.3]
    got = lower_envelope(x, e, [5, 10, 15, 20, 40, 79, 80, 1e9])
    np.testing.assert_allclose(got, [np.nan, 0.5, 0.5, 0.4, 0.4, 0.4, 0.3, 0.3])


@given(st.lists(st.tuples(st.floats(1, 1e6), st.floats(0, 1)), min_size=1, max_size=20),
       st.lists(st.floats(0.5, 2e6), min_size=1, max_size=20))
def test_lower_envelope_properties(points: list[tuple[float, float]], budgets: list[float]) -> None:
    x, e = np.array(points).T
    cs = np.sort(budgets)
    env = lower_envelope(x, e, cs)
    for c, v in zip(cs, env):
        reach = e[x <= c * (1 + 1e-9)]  # same tolerance as lower_envelope
        assert (math.isnan(v) and len(reach) == 0) or v == reach.min()
    finite = env[np.isfinite(env)]
    assert np.all(np.diff(finite) <= 0)  # more compute never hurts


def test_compute_optimal_picks_known_best() -> None:
    s = seed_summary(make_metrics())
    c_t, c_s, c_b = cost(1e5), cost(3e5), cost(1e6)  # 2e7, 6e7, 2e8
    t = compute_optimal(s, budgets=[c_t, 2 * c_t, c_s, 2 * c_s, c_b, 16 * c_b])
    # tiny alone; tiny alone; tie tiny n=2 vs small n=1 (0.48) -> smaller; small n=2; small n=2 (0.355)
    # beats base n=1 (0.38); base at the top
    assert list(t["best_model"]) == ["tiny", "tiny", "tiny", "small", "small", "base"]
    assert list(t["best_params"]) == [1e5, 1e5, 1e5, 3e5, 3e5, 1e6]
    assert t.loc[0, "error_small"] != t.loc[0, "error_small"]  # NaN: small cannot run at 2e7
    assert t.loc[5, "best_error"] == pytest.approx(0.10 + 0.30 / 16 - 0.02)
    default = compute_optimal(s)
    assert len(default) == 12 and default["budget"].min() == pytest.approx(c_t)
    assert default["best_params"].is_monotonic_increasing


def test_fit_recovers_known_law() -> None:
    a, b = 1.19, 2.03
    ns = np.array([1e6, 1e7, 3e7, 1e8, 1e9])
    budgets = 10 ** (a * np.log10(ns) + b)
    fit = fit_optimal_size(pd.DataFrame({"budget": budgets, "best_params": ns}))
    assert fit.a == pytest.approx(a) and fit.b == pytest.approx(b)
    assert fit.r2 == pytest.approx(1.0) and fit.n_points == 5
    np.testing.assert_allclose(fit.n_opt(budgets), ns)
    flat = fit_optimal_size(pd.DataFrame({"budget": [1e9, 1e10], "best_params": [1e6, 1e6]}))
    assert math.isnan(flat.a) and flat.reason


# ---------------------------------------------------------------- tables.py

def test_table4_shape_and_values() -> None:
    t = table4(seed_summary(make_metrics(rebase=True, subsets=True)))
    assert list(t.columns) == TABLE4_COLUMNS
    assert len(t) == 3 * (1 + len(NS))  # greedy + sampling only, subset all
    assert set(t["strategy"]) == {"greedy", "sampling"}
    r = t[(t["model"] == "base") & (t["strategy"] == "sampling") & (t["samples"] == 8)].iloc[0]
    err = 0.10 + 0.30 / 8
    assert r["majority"] == pytest.approx(100 * (1 - err))
    assert r["weighted_majority"] == pytest.approx(100 * (1 - err + 0.02))
    assert r["best_of_n"] == pytest.approx(100 * (1 - err - 0.01))
    assert r["flops"] == pytest.approx(8 * cost(1e6))
    assert r["flops_per_sample"] == pytest.approx(cost(1e6))
    g = t[t["strategy"] == "greedy"]
    assert (g["majority"] == g["best_of_n"]).all()


def test_table1() -> None:
    assert list(table1(seed_summary(make_metrics())).columns) == TABLE1_COLUMNS
    assert table1(seed_summary(make_metrics())).empty
    t = table1(seed_summary(make_metrics(rebase=True)))
    assert len(t) == 6 and list(t["strategy"]) == ["sampling", "rebase"] * 3
    # by default sampling at its largest budget, REBASE at its smallest: fixed before the run
    assert (t[t["strategy"] == "sampling"]["samples"] == 16).all()
    assert (t[t["strategy"] == "rebase"]["samples"] == 1).all()
    # the configured budgets, whatever the accuracies say
    t = table1(seed_summary(make_metrics(rebase=True)), sampling_n=8, rebase_n=4)
    assert list(t["samples"]) == [8, 4] * 3
    reb = t[t["strategy"] == "rebase"].iloc[0]
    assert reb["flops"] == pytest.approx(1.1 * 4 * cost(PARAMS[reb["model"]]))


# ---------------------------------------------------------------- plotting.py

def test_plot_error_vs_flops(tmp_path: Path) -> None:
    s = seed_summary(make_metrics(rebase=True))
    png, pdf = tmp_path / "f" / "e.png", tmp_path / "f" / "e.pdf"
    got = plot_error_vs_flops(s, "toy", "small", png, pdf, source="synthetic metrics")
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    assert set(got["panel"]) == {"sampling", "rebase"}
    r = got[(got["panel"] == "sampling") & (got["strategy"] == "sampling")
            & (got["aggregation"] == "majority") & (got["n"] == 2)].iloc[0]
    assert r["error_mean_pct"] == pytest.approx(100 * 0.375)
    assert r["error_min_pct"] == pytest.approx(100 * 0.365)
    assert r["policy_flops"] == pytest.approx(2 * cost(3e5))
    assert len(got[got["strategy"] == "greedy"]) == 2  # one star per panel
    plot_error_vs_flops(s, "toy", "small", png, pdf, x="total_flops")  # PRM switch works


def test_plot_compute_optimal(tmp_path: Path) -> None:
    s = seed_summary(make_metrics())
    png, pdf = tmp_path / "co.png", tmp_path / "co.pdf"
    got = plot_compute_optimal(s, "toy", "sampling", "weighted_majority", png, pdf,
                               source="synthetic metrics")
    assert png.stat().st_size > 1000 and pdf.stat().st_size > 1000
    expected = compute_optimal(s)
    pd.testing.assert_frame_equal(got[expected.columns], expected)
    fit = fit_optimal_size(expected)
    assert got["fit_a"].iloc[0] == pytest.approx(fit.a) and got["fit_a"].iloc[0] > 0
    assert {"fit_b", "fit_r2", "fit_n_points", "fit_reason"} <= set(got.columns)


def test_strategy_and_difficulty_figures(tmp_path: Path) -> None:
    from infscale.reporting.plotting import plot_easy_hard, plot_strategies

    s = seed_summary(make_metrics(rebase=True, mcts=True, subsets=True))
    got = plot_strategies(s, "toy", "small", "weighted_majority", tmp_path / "s.png", tmp_path / "s.pdf")
    assert set(got["strategy"]) == {"greedy", "sampling", "rebase", "mcts"}
    assert (tmp_path / "s.png").stat().st_size > 1000 and (tmp_path / "s.pdf").stat().st_size > 1000
    got = plot_easy_hard(s, "toy", "small", "weighted_majority", tmp_path / "e.png", tmp_path / "e.pdf")
    assert set(got["panel"]) == {"easy", "hard"} and "mcts" not in set(got["strategy"])
    with pytest.raises(ValueError, match="no easy/hard subsets"):
        plot_easy_hard(seed_summary(make_metrics(rebase=True)), "toy", "small", "majority",
                       tmp_path / "x.png", tmp_path / "x.pdf")
