"""The compute-optimal choice table (reporting.choice) on hand-made configurations and per-problem outcomes with
known answers: the frontier, the winner per budget, the runner-up rule, ties, the lead's significance, the
easy/hard split, greedy's single point, the Markdown and the figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infscale.reporting import choice
from infscale.reporting.report import REQUIRED_COLUMNS, load_metrics

FLOPS_COLS = [c for c in REQUIRED_COLUMNS if "flops" in c]


def configs(*rows, dataset="toy", subset="all"):
    """Configurations as `choice.configurations` returns them: (model, strategy, aggregation, n, flops, error)."""
    params = {"s": 1_000, "m": 10_000, "l": 100_000}
    return pd.DataFrame([{"dataset": dataset, "subset": subset, "model": m, "strategy": s, "aggregation": a, "n": n,
                          "params": params[m], "flops": f, "error": e} for m, s, a, n, f, e in rows])


# A (cheap), B (dearer and worse: dominated), C (best), D (as dear as C, worse: dominated), E (dearer than C, as
# good: dominated).
FIVE = configs(("s", "sampling", "majority", 1, 1e10, 0.50), ("s", "sampling", "majority", 2, 2e10, 0.60),
               ("m", "sampling", "weighted_majority", 4, 4e10, 0.40), ("m", "rebase", "weighted_majority", 4, 4e10, 0.45),
               ("l", "sampling", "majority", 8, 8e10, 0.40))


def test_frontier_of_five_configurations():
    on = choice.frontier(FIVE)
    assert on.tolist() == [True, False, True, False, False]


def test_frontier_refuses_mixed_subsets():
    mixed = pd.concat([FIVE, FIVE.assign(subset="hard")], ignore_index=True)
    with pytest.raises(ValueError, match="several data sets or subsets"):
        choice.frontier(mixed)


def test_choice_at_each_budget_and_winners_on_the_frontier():
    grid = np.array([1e10, 3e10, 4e10, 1e11])
    t = choice.choose(FIVE, grid)
    assert t["model"].tolist() == ["s", "s", "m", "m"]
    assert t["n"].tolist() == [1, 1, 4, 4]
    assert t["error"].tolist() == [0.50, 0.50, 0.40, 0.40]
    on = FIVE[choice.frontier(FIVE)]
    assert set(zip(t["model"], t["n"])) <= set(zip(on["model"], on["n"]))
    # runner-up: another model or strategy; at 4e10 the rebase point (same model, other strategy) beats s
    assert t["runner_up_strategy"][:2].isna().all()  # only s sampling fits 1e10 and 3e10
    assert (t["runner_up_model"][2], t["runner_up_strategy"][2], t["runner_up_error"][2]) == ("m", "rebase", 0.45)
    # at 1e11 the large model's 0.40 ties C's but costs more: C wins, l is the runner-up
    assert (t["runner_up_model"][3], t["runner_up_error"][3]) == ("l", 0.40)


def test_budget_grid_spans_the_measured_range():
    g = choice.budgets(FIVE)
    assert len(g) == choice.BUDGET_POINTS
    assert g[0] == pytest.approx(1e10) and g[-1] == pytest.approx(8e10)
    assert np.allclose(np.diff(np.log10(g)), np.log10(8) / 11)
    # the grid's ends afford the cheapest and the dearest configuration (no rounding loss)
    t = choice.choose(FIVE, g)
    assert len(t) == choice.BUDGET_POINTS and t["flops"].iloc[0] == 1e10


def test_configuration_cheaper_than_every_budget():
    cheap = pd.concat([FIVE, configs(("s", "greedy", "majority", 1, 1e8, 0.30))], ignore_index=True)
    t = choice.choose(cheap, np.array([1e10, 1e11]))
    assert t["strategy"].tolist() == ["greedy", "greedy"]  # affordable under every budget, and the best
    assert t["runner_up_strategy"].tolist() == ["sampling", "sampling"]  # same model, another strategy
    # a worse cheap configuration is affordable everywhere but wins nowhere
    worse = pd.concat([FIVE, configs(("s", "greedy", "majority", 1, 1e8, 0.90))], ignore_index=True)
    assert choice.choose(worse, np.array([1e10, 1e11]))["strategy"].tolist() == ["sampling", "sampling"]
    # a budget below every configuration has no row
    assert choice.choose(FIVE, np.array([1e9, 1e10]))["budget_flops"].tolist() == [1e10]


def test_runner_up_differs_in_model_or_strategy_not_only_n():
    c = configs(("m", "sampling", "weighted_majority", 8, 8e10, 0.30),
                ("m", "sampling", "weighted_majority", 4, 4e10, 0.31),  # same model and strategy: skipped
                ("m", "sampling", "majority", 8, 8e10, 0.305),  # same model and strategy, another vote: skipped
                ("m", "rebase", "weighted_majority", 4, 6e10, 0.40),
                ("s", "sampling", "weighted_majority", 8, 1e10, 0.45))
    win, ru = choice.pick(c, 1e11)
    assert (win["model"], win["strategy"], win["n"]) == ("m", "sampling", 8)
    assert (ru["model"], ru["strategy"], ru["n"]) == ("m", "rebase", 4)
    alone = c[(c["model"] == "m") & (c["strategy"] == "sampling")]
    win, ru = choice.pick(alone, 1e11)
    assert win is not None and ru is None


def test_ties_go_to_the_cheaper_then_the_smaller_model():
    c = configs(("l", "sampling", "majority", 2, 2e10, 0.3), ("m", "sampling", "majority", 4, 3e10, 0.3),
                ("m", "rebase", "majority", 4, 2e10, 0.3))
    win, ru = choice.pick(c, 1e11)
    assert (win["model"], win["strategy"]) == ("m", "rebase")  # cheapest of the equal ones; then smaller than l
    assert (ru["model"], ru["strategy"]) == ("l", "sampling")  # as cheap as m rebase, cheaper than m sampling
    # same error to rounding noise of a mean: still a tie
    c2 = configs(("m", "sampling", "majority", 4, 3e10, 0.3), ("l", "sampling", "majority", 2, 2e10, 0.1 + 0.2))
    assert choice.pick(c2, 1e11)[0]["model"] == "l"
    # the order does not depend on the input's row order
    assert choice.pick(c.iloc[::-1], 1e11)[0]["strategy"] == "rebase"


# ------------------------------------------------------------------------ per-problem outcomes -> metrics


P = 400
LEVELS = np.where(np.arange(P) < P // 2, 1, 4)  # first half easy (level 1), second half hard (level 4)


def study(points, seeds=(0, 1), extra_columns=False):
    """(metrics, problems) of hand-made configurations: (model, strategy, aggregation, n, flops, correct (P,))
    with the same outcomes under every seed; metrics rows per seed and subset, as the metrics rule writes."""
    params = {"s": 1_000, "m": 10_000, "l": 100_000}
    metrics, problems = [], []
    for model, strategy, agg, n, flops, correct in points:
        correct = np.asarray(correct, int)
        for seed in seeds[:1] if strategy == "greedy" else seeds:
            for subset, mask in (("all", np.ones(P, bool)), ("easy", LEVELS <= 2), ("hard", LEVELS >= 3)):
                acc = correct[mask].mean()
                row = {"dataset": "toy", "model": model, "strategy": strategy, "n": n, "seed": seed,
                       "aggregation": agg, "subset": subset, "n_problems": int(mask.sum()), "accuracy": acc,
                       "error": 1 - acc, "params": params[model], "generated_tokens": 10.0,
                       **{c: float(flops) for c in FLOPS_COLS}}
                if extra_columns:
                    row["coverage"] = 0.9
                metrics.append(row)
            problems += [{"dataset": "toy", "model": model, "strategy": strategy, "seed": seed, "kind": "budget",
                          "n": n, "aggregation": agg, "id": str(i), "level": int(LEVELS[i]), "correct": int(c)}
                         for i, c in enumerate(correct)]
    return pd.DataFrame(metrics), pd.DataFrame(problems)


def outcomes(right: int, first: int = 0) -> np.ndarray:
    """`right` problems right, from problem `first` on (wrapping)."""
    c = np.zeros(P, int)
    c[(first + np.arange(right)) % P] = 1
    return c


def test_lead_interval_excludes_zero_for_a_clear_winner():
    win = outcomes(240)  # problems 0-239 right
    ru = outcomes(200)  # 0-199 right: the winner is right wherever the runner-up is, and on 40 more
    m, p = study([("m", "sampling", "weighted_majority", 8, 8e10, win), ("s", "sampling", "weighted_majority", 8,
                                                                          1e10, ru)])
    t = choice.compute_optimal_choice(m, p, draws=400, seed=0)
    top = t[(t["subset"] == "all")].iloc[-1]
    assert (top["model"], top["runner_up_model"]) == ("m", "s")
    assert top["error"] == pytest.approx(0.4) and top["lead"] == pytest.approx(0.1)
    assert 0 < top["lead_low"] <= 0.1 <= top["lead_high"]
    assert bool(top["lead_significant"])
    assert top["error_low"] < 0.4 < top["error_high"]
    # the cheapest budget fits only s: no runner-up, no lead
    first = t[t["subset"] == "all"].iloc[0]
    assert first["model"] == "s" and pd.isna(first["runner_up_model"]) and pd.isna(first["lead"])
    assert not first["lead_significant"]


def test_lead_interval_includes_zero_for_a_near_tie():
    base = outcomes(200)
    win, ru = base.copy(), base.copy()
    win[[300, 301, 302]] = 1  # the winner alone is right on 3 problems
    ru[[303, 304]] = 1  # the runner-up alone on 2: a lead of 1 problem in 400
    m, p = study([("m", "sampling", "weighted_majority", 8, 8e10, win), ("m", "rebase", "weighted_majority", 4,
                                                                          4e10, ru)])
    t = choice.compute_optimal_choice(m, p, draws=400, seed=0)
    top = t[t["subset"] == "all"].iloc[-1]
    assert (top["strategy"], top["runner_up_strategy"]) == ("sampling", "rebase")
    assert top["lead"] == pytest.approx(1 / P)
    assert top["lead_low"] < 0 < top["lead_high"]
    assert not top["lead_significant"]


def test_same_resamples_as_the_claims():
    """Draws come from the claims' ProblemBootstrap with the same seed: the same seed gives the same table, another
    seed other intervals."""
    m, p = study([("m", "sampling", "weighted_majority", 8, 8e10, outcomes(240)),
                  ("s", "sampling", "weighted_majority", 8, 1e10, outcomes(200, first=100))])
    a = choice.compute_optimal_choice(m, p, draws=200, seed=3)
    b = choice.compute_optimal_choice(m, p, draws=200, seed=3)
    c = choice.compute_optimal_choice(m, p, draws=200, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["lead_low"].dropna(), c["lead_low"].dropna())


def test_subsets_can_change_the_best_strategy():
    easy, hard = LEVELS <= 2, LEVELS >= 3
    samp = np.where(easy, 1, 0)
    samp[np.nonzero(hard)[0][:40]] = 1  # sampling: every easy problem, 40 of 200 hard ones
    reb = np.where(hard, 1, 0)
    reb[np.nonzero(easy)[0][:150]] = 1  # rebase: every hard problem, 150 of 200 easy ones
    m, p = study([("m", "sampling", "weighted_majority", 8, 8e10, samp), ("m", "rebase", "weighted_majority", 4,
                                                                           8e10, reb)])
    t = choice.compute_optimal_choice(m, p, draws=200)
    assert list(dict.fromkeys(t["subset"])) == ["all", "easy", "hard"]
    best = t.groupby("subset").last()
    assert best.loc["all", "strategy"] == "rebase"  # 350 right against 240
    assert best.loc["easy", "strategy"] == "sampling" and best.loc["hard", "strategy"] == "rebase"
    assert best.loc["easy", "error"] == pytest.approx(0.0) and best.loc["hard", "error"] == pytest.approx(0.0)
    assert best.loc["easy", "lead"] == pytest.approx(0.25) and best.loc["hard", "lead"] == pytest.approx(0.8)
    assert best["lead_significant"].all()
    # every subset's rows use the data set's one grid: budgets line up
    grids = t.groupby("subset")["budget_flops"].apply(tuple)
    assert grids["all"] == grids["easy"] == grids["hard"]
    md = choice.to_markdown(t)
    side = md.split("## toy: does the choice change with difficulty?")[1].splitlines()
    assert side[2] == "| budget (FLOPs) | all | easy | hard |"
    assert side[4] == ("| 8.00e+10 | m rebase weighted_majority n=4* | m sampling weighted_majority n=8* | "
                       "m rebase weighted_majority n=4* |")
    assert "difficulty" not in choice.to_markdown(t[t["subset"] == "all"])


def test_greedy_is_one_configuration_and_unknown_names_pass():
    g = outcomes(100)
    points = [("s", "greedy", a, 1, 1e9, g) for a in ("majority", "weighted_majority", "best_of_n")]
    points += [("s", "beam_search", "weighted_majority", 4, 4e9, outcomes(150))]  # a strategy this code never named
    m, p = study(points, extra_columns=True)  # and a metrics column it ignores
    c = choice.configurations(choice.seed_summary(m, x="policy_flops"), "policy_flops")
    greedy = c[(c["strategy"] == "greedy") & (c["subset"] == "all")]
    assert greedy[["aggregation", "n"]].values.tolist() == [["majority", 1]]
    t = choice.compute_optimal_choice(m, p, draws=100)
    top = t[t["subset"] == "all"].iloc[-1]
    assert (top["strategy"], top["runner_up_strategy"], top["runner_up_aggregation"]) == \
           ("beam_search", "greedy", "majority")
    assert "beam_search" in choice.strategy_colors(["greedy", "sampling", "beam_search"])


def test_missing_per_problem_outcomes_is_a_clear_error():
    m, p = study([("m", "sampling", "majority", 8, 8e10, outcomes(240)), ("s", "sampling", "majority", 8, 1e10,
                                                                          outcomes(200))])
    with pytest.raises(ValueError, match=r"no per-problem outcomes for toy m sampling majority n=8"):
        choice.compute_optimal_choice(m, p[p["model"] != "m"], draws=10)


def test_markdown_and_files(tmp_path):
    m, p = study([("m", "sampling", "weighted_majority", 8, 8e10, outcomes(240)),
                  ("s", "sampling", "weighted_majority", 8, 1e10, outcomes(200)),
                  ("s", "greedy", "majority", 1, 1e9, outcomes(100))])
    m.to_csv(tmp_path / "metrics.csv", index=False)
    t = choice.compute_optimal_choice(load_metrics(tmp_path / "metrics.csv"), p, draws=200)
    assert list(t.columns) == choice.COLUMNS
    choice.write_choice(t, tmp_path / "c.csv", tmp_path / "c.md", x="total_flops")
    back = pd.read_csv(tmp_path / "c.csv")
    assert len(back) == len(t) == 3 * choice.BUDGET_POINTS
    md = (tmp_path / "c.md").read_text()
    assert "## toy, all problems" in md and "## toy, hard problems" in md
    assert "Per FLOPs budget per problem (`total_flops`)" in md
    lines = md.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("| budget (FLOPs)"))
    assert lines[head + 1].count("---") == lines[head].count("|") - 1
    first, last = lines[head + 2], lines[head + 1 + choice.BUDGET_POINTS]
    assert first.startswith("| 1.00e+09 | s | greedy | majority | 1 | 1.00e+09 | 75.0% [")  # greedy alone fits
    assert first.rstrip().endswith("| none |  |  |  |")  # no runner-up: empty lead and significance
    assert last.startswith("| 8.00e+10 | m | sampling | weighted_majority | 8 | 8.00e+10 | 40.0% [")
    assert "| s sampling weighted_majority n=8 | 50.0% | +10.0 [" in last and last.endswith("| yes |")
    assert "| s greedy | 75.0% |" in lines[head + 2 + 6]  # greedy as a runner-up: no vote, no n


def test_empty_table_renders():
    assert "No configuration measured." in choice.to_markdown(pd.DataFrame(columns=choice.COLUMNS))


def test_frontier_figure(tmp_path):
    m, _ = study([("m", "sampling", "weighted_majority", 8, 8e10, outcomes(240)),
                  ("m", "sampling", "weighted_majority", 4, 4e10, outcomes(180)),
                  ("s", "sampling", "weighted_majority", 8, 1e10, outcomes(200)),
                  ("s", "beam_search", "weighted_majority", 4, 2e10, outcomes(150)),
                  ("s", "greedy", "majority", 1, 1e9, outcomes(100))])
    numbers = choice.frontier_table(m, "toy")
    assert numbers["on_frontier"].tolist() == [True, True, False, False, True]  # by FLOPs: greedy, s, beam, m4, m8
    choice.plot_frontier(numbers, tmp_path / "f.png", tmp_path / "f.pdf", grid=choice.budgets(numbers))
    assert (tmp_path / "f.png").stat().st_size > 10_000 and (tmp_path / "f.pdf").exists()
    with pytest.raises(ValueError, match="no metrics rows for dataset 'gsm8k'"):
        choice.frontier_table(m, "gsm8k")


def test_csv_keeps_integer_budgets(tmp_path):
    m, p = study([("m", "sampling", "majority", 8, 8e10, outcomes(240)), ("s", "sampling", "majority", 8, 1e10,
                                                                          outcomes(200))])
    t = choice.compute_optimal_choice(m, p, draws=50)
    choice.write_choice(t, tmp_path / "c.csv", tmp_path / "c.md")
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert rows[0].split(",") == choice.COLUMNS
    assert ",s,sampling,majority,8," in rows[1] and ",,,,,,," in rows[1]  # no runner-up: empty cells
    assert ",s,sampling,majority,8,1" in rows[-1]  # the runner-up's n stays an integer


def test_the_default_study_page_shows_the_tables_header():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "default-study.md").read_text()
    header = next(line for line in page.splitlines() if line.startswith("dataset,subset,budget_flops"))
    assert header.split(",") == choice.COLUMNS
