"""Named figures and tables (config `figures:`): every one of config/paper.yaml, drawn from synthetic metrics."""
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from infscale.core.validation import validate_config
from infscale.reporting.figures import make_figure, select
from infscale.reporting.report import REQUIRED_COLUMNS, seed_summary

ROOT = Path(__file__).resolve().parents[1]
PAPER = validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


def synthetic_metrics(config) -> pd.DataFrame:
    """Metrics rows for every (dataset, model, strategy) the figures read: small models improve fast with
    samples and saturate high, large ones start dearer and end lower, so the compute-optimal size grows."""
    rows = []
    combos = {(d, m, s) for f in config["figures"].values() for d in f["datasets"] for m in f["models"]
              for s in f["strategies"]}
    for d, m, s in sorted(combos):
        params = config["models"][m]["params"]
        floor = 0.9 * (params / 1e8) ** -0.35
        budgets = [1] if s == "greedy" else config["strategies"][s]["budgets"]
        for n in budgets:
            for seed in (0, 1):
                for agg in ("majority", "weighted_majority", "best_of_n"):
                    for subset in ("all", "easy", "hard") if d == "math500" else ("all",):
                        error = min(1.0, floor + (1 - floor) * 0.6 * n ** -0.7 + 0.01 * seed)
                        flops = 2.0 * params * 400 * n * (1.2 if s != "sampling" else 1.0)
                        rows.append({"dataset": d, "model": m, "strategy": s, "n": n, "seed": seed,
                                     "aggregation": agg, "subset": subset, "n_problems": 100, "accuracy": 1 - error,
                                     "error": error, "params": params, "policy_prefill_flops": 0.0,
                                     "policy_decode_flops": flops, "prm_flops": flops / 3, "policy_flops": flops,
                                     "total_flops": flops * 4 / 3, "generated_tokens": 400.0 * n})
    return pd.DataFrame(rows, columns=list(REQUIRED_COLUMNS))


@pytest.fixture(scope="module")
def metrics():
    return synthetic_metrics(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER["figures"]))
def test_every_paper_figure_is_drawn(metrics, name, tmp_path):
    spec = PAPER["figures"][name]
    plot = spec["kind"] in ("grid", "compute_optimal")
    out = {k: tmp_path / f"{name}.{k}" for k in (("png", "pdf", "csv", "md") if plot else ("csv", "md"))}
    table = make_figure(metrics, name, spec, x="policy_flops", source="synthetic", **out)
    assert len(table) > 0 and out["md"].read_text().startswith("|")
    assert pd.read_csv(out["csv"]).shape[0] == len(table)
    if plot:
        assert out["png"].read_bytes()[:4] == b"\x89PNG" and out["pdf"].read_bytes()[:4] == b"%PDF"
    if spec["kind"] == "grid":  # one panel per value of the panel dimension, in the spec's order
        column = spec["panels"]
        key = {"dataset": "datasets", "model": "models", "aggregation": "aggregations", "subset": "subsets"}[column]
        assert list(dict.fromkeys(table["panel"])) == spec[key]
        assert set(table["model"]) == set(spec["models"]) and set(table["strategy"]) <= set(spec["strategies"])


def test_fig4_curves_are_model_by_strategy(metrics, tmp_path):
    spec = PAPER["figures"]["fig4_math500_llemma_strategies"]
    table = make_figure(metrics, "fig4", spec, x="policy_flops", png=tmp_path / "a.png", pdf=tmp_path / "a.pdf",
                        csv=tmp_path / "a.csv", md=tmp_path / "a.md")
    curves = set(table[table.panel == "weighted_majority"]["curve"])
    assert curves == {f"{s} {m}" for s in ("Sampling", "REBASE", "MCTS") for m in ("llemma-7b", "llemma-34b")}
    assert set(table[table.strategy == "mcts"]["n"]) == {32, 64, 128}


def test_fig8_reads_the_easy_and_hard_subsets(metrics, tmp_path):
    spec = PAPER["figures"]["fig8_math500_easy_hard"]
    table = make_figure(metrics, "fig8", spec, x="policy_flops", png=tmp_path / "a.png", pdf=tmp_path / "a.pdf",
                        csv=tmp_path / "a.csv", md=tmp_path / "a.md")
    assert set(table["subset"]) == {"easy", "hard"} and set(table["aggregation"]) == {"weighted_majority"}


def test_fit_reports_the_regression(metrics, tmp_path):
    spec = PAPER["figures"]["fit_gsm8k_pythia"]
    fit = make_figure(metrics, "fit", spec, x="policy_flops", csv=tmp_path / "f.csv", md=tmp_path / "f.md").iloc[0]
    assert fit["a"] > 0 and math.isfinite(fit["b"]) and fit["n_points"] >= 2 and fit["paper_a"] == 1.19
    assert len(fit["optimal_sizes"].split()) >= 2  # the optimal size changes with the budget


def test_table4_lists_the_asked_budgets(metrics, tmp_path):
    spec = PAPER["figures"]["table4_strategies_at_budget"]
    t = make_figure(metrics, "t4", spec, x="policy_flops", csv=tmp_path / "t.csv", md=tmp_path / "t.md")
    assert set(t["strategy"]) == {"greedy", "sampling", "rebase"} and set(t["samples"]) == {1, 8, 32}
    assert set(t["dataset"]) == {"math500", "gsm8k"}


def test_a_figure_without_its_metrics_says_which(metrics):
    summary = seed_summary(metrics[metrics.model != "llemma-34b"])
    with pytest.raises(ValueError, match="model llemma-34b"):
        select(summary, PAPER["figures"]["fig4_math500_llemma_strategies"])
