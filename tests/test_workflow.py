"""The whole pipeline, for real: snakemake on config/ci.yaml in a temp dir, then reruns and bad configs."""
import json
import os
import shutil

import pandas as pd
import pytest
import yaml
from test_numerics import USER as USER_CPU_SETTINGS
from workflow_runs import ROOT, SNAKEMAKE, planned_jobs, snakemake  # noqa: F401 (other tests import them from here)

pytestmark = pytest.mark.workflow


@pytest.fixture
def run(ci_run):
    """The local config/ci.yaml run, shared with the cluster test (conftest.py)."""
    return ci_run


def test_every_output_is_there_and_sound(run):
    r = run / "results"
    figures = ["error_vs_flops_toy_tiny-a", "error_vs_flops_toy_tiny-b", "compute_optimal_toy",
               "easy_hard_toy_tiny-a", "easy_hard_toy_tiny-b"]
    figures += [f"strategies_toy_{m}_{a}" for m in ("tiny-a", "tiny-b")
                for a in ("majority", "weighted_majority", "best_of_n")]
    for name in figures:
        for ext in ("png", "pdf"):
            assert (r / "figures" / f"{name}.{ext}").stat().st_size > 1000
        table = pd.read_csv(r / "tables" / f"{name}.csv")
        assert len(table) > 0
        assert (r / "tables" / f"{name}.md").read_text().startswith("|")
    assert (r / "figures" / "error_vs_flops_toy_tiny-a.png").read_bytes()[:4] == b"\x89PNG"
    assert (r / "figures" / "compute_optimal_toy.pdf").read_bytes()[:4] == b"%PDF"

    t4 = pd.read_csv(r / "tables" / "table4_toy.csv")
    assert set(t4["strategy"]) == {"greedy", "sampling"}
    assert set(t4[t4.strategy == "sampling"]["samples"]) == {1, 2, 4}
    assert {"majority", "weighted_majority", "best_of_n"} <= set(t4.columns)

    t1 = pd.read_csv(r / "tables" / "table1_toy.csv")
    assert set(t1["strategy"]) == {"sampling", "rebase", "beam_search", "dvts"} and set(t1["model"]) == {"tiny-a", "tiny-b"}

    t1 = t1.set_index("strategy")
    assert set(t1.loc["rebase", "samples"]) == {2} and set(t1.loc["sampling", "samples"]) == {4}  # the config's

    claims = pd.read_csv(r / "claims.csv").set_index("claim_id")
    assert list(claims.index) == list(range(1, 11))
    assert set(claims["verdict"]) <= {"holds", "fails", "inconclusive", "cannot_check"}
    # The run has REBASE and MCTS: their claims are decided per model, or set aside by the verifier gate with the
    # AUC that closed it (the CI study's PRM is barely trained), never skipped silently.
    for cid in (3, 4, 6, 7):
        measured = claims.loc[cid, "measured"]
        assert "toy/tiny-a" in measured and "toy/tiny-b" in measured
        assert claims.loc[cid, "verdict"] != "cannot_check" or "AUC" in measured
    assert "[" in claims.loc[1, "measured"]  # an interval
    # the scorecard by unit: every unit named in a claim's row has its own row, with the same verdict
    units = pd.read_csv(r / "claims_units.csv", keep_default_na=False)
    assert len(units) > 0 and set(units["claim_id"]) <= set(claims.index)
    for u in units.itertuples():
        key = "/".join(x for x in (u.dataset, u.model, u.aggregation) if x)
        assert f"{key}: {u.verdict}," in claims.loc[u.claim_id, "measured"]
    for cid, summary in claims["units"].items():  # e.g. "holds 1/2, inconclusive 1/2": counts of its unit rows
        rows = units[units["claim_id"] == cid]
        expected = [f"{v} {n}/{len(rows)}" for v, n in rows["verdict"].value_counts().items()]
        assert sorted(summary.split(", ")) == sorted(expected) if len(rows) else summary == "no unit"


def test_prm_quality_report_and_labels_from_every_sampling_policy(run):
    r = run / "results"
    q = pd.read_csv(r / "tables" / "prm_quality.csv")
    # the study's verifier (tiny-b's likelihood) first, then the Math-Shepherd PRM ablation, on the same candidates
    assert list(q["verifier"]) == ["likelihood-ci", "likelihood-ci", "prm-ci", "prm-ci"]
    assert list(q["model"]) == ["tiny-a", "tiny-b"] * 2 and set(q["dataset"]) == {"toy"}
    assert (q["problems"] == 2 * 24).all()  # both seeds' questions
    for col in ("within_auc_last", "within_auc_min", "pooled_auc_last", "best_of_n_last", "oracle", "majority",
                "ceiling_auc"):
        assert ((q[col].isna()) | ((q[col] >= 0) & (q[col] <= 1))).all(), col
    # the same candidates: what does not depend on the verifier agrees
    for col in ("oracle", "majority", "ceiling_auc", "sample_accuracy"):
        assert list(q[col].iloc[:2].fillna(-1)) == list(q[col].iloc[2:].fillna(-1)), col
    # the likelihood verifier's step scores never rise, so its last and min reductions agree
    assert list(q["within_auc_last"].iloc[:2].fillna(-1)) == list(q["within_auc_min"].iloc[:2].fillna(-1))
    assert (r / "scored_ablations" / "prm-ci" / "toy" / "tiny-a" / "sampling" / "n4" / "seed1.jsonl").exists()
    assert (q["best_of_n_last"] <= q["oracle"]).all()
    md = (r / "tables" / "prm_quality.md").read_text()
    assert "within_auc_last" in md and "exact step correctness" in md
    assert (r / "figures" / "prm_quality.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (r / "prm_data" / "prm-ci.jsonl").read_text().splitlines()]
    assert {row["source"] for row in rows} == {"tiny-a", "tiny-b"}  # prm.sample_from


def test_metrics_are_consistent(run):
    files = (run / "results" / "metrics").rglob("*.csv")
    m = pd.concat(pd.read_csv(p) for p in files if not p.name.endswith(".problems.csv"))
    assert set(m["model"]) == {"tiny-a", "tiny-b"} and set(m["subset"]) == {"all", "easy", "hard"}
    assert set(m["strategy"]) == {"greedy", "sampling", "rebase", "mcts", "beam_search", "dvts"}
    assert set(m[m.strategy == "rebase"]["n"]) == {2, 4} and set(m[m.strategy == "mcts"]["n"]) == {4, 8}
    assert set(m[m.strategy == "beam_search"]["n"]) == {2} and set(m[m.strategy == "dvts"]["n"]) == {4}
    assert ((m["accuracy"] >= 0) & (m["accuracy"] <= 1)).all()
    assert (m["error"] == 1 - m["accuracy"]).all()
    sampling = m[(m.strategy == "sampling") & (m.subset == "all") & (m.aggregation == "majority")]
    # Smaller budgets are prefixes of the largest: decode FLOPs grow with n for every seed.
    for _, g in sampling.groupby(["model", "seed"]):
        assert g.sort_values("n")["policy_decode_flops"].is_monotonic_increasing
    assert (m["prm_flops"] > 0).all()
    assert (m.groupby("model")["params"].nunique() == 1).all()
    # the paper's FLOPs convention: sampling at n costs n times one sample, per seed
    for _, g in sampling.groupby(["model", "seed"]):
        per_sample = g["policy_flops"] / g["n"]
        assert per_sample.max() == pytest.approx(per_sample.min(), rel=1e-9)
    assert (m["invalid_share"].dropna().between(0, 1)).all()
    # coverage never falls with n; its first-n share bounds every aggregation at n (docs/design.md, "Coverage")
    for _, g in m[m.strategy == "sampling"].groupby(["model", "seed", "aggregation", "subset"]):
        assert g.sort_values("n")["coverage"].is_monotonic_increasing
    assert (m["coverage_first_n"] >= m["accuracy"] - 1e-12).all()
    fit = pd.read_csv(run / "results" / "tables" / "coverage_fit.csv")
    assert set(fit["model"]) == {"tiny-a", "tiny-b"} and (fit["n_points"] + fit["n_dropped"] == 3).all()
    problems = pd.read_csv(run / "results" / "metrics" / "toy" / "tiny-a" / "sampling.problems.csv")
    budget = problems[(problems.kind == "budget") & (problems.aggregation == "majority")]
    # the per-problem outcomes average to the metrics' accuracy
    acc = budget.groupby(["seed", "n"])["correct"].mean()
    ref = sampling[sampling.model == "tiny-a"].set_index(["seed", "n"])["accuracy"]
    assert (acc.reindex(ref.index) - ref).abs().max() < 1e-9
    assert m[m.model == "tiny-b"]["params"].iloc[0] > m[m.model == "tiny-a"]["params"].iloc[0]


def test_generations_are_traceable(run):
    gen = run / "results" / "generations" / "toy" / "tiny-a" / "sampling" / "n4" / "seed1.jsonl"
    rows = [json.loads(line) for line in gen.read_text().splitlines()]
    assert len(rows) == 24 and all(len(r["candidates"]) == 4 for r in rows)
    scored = run / "results" / "scored" / "toy" / "tiny-a" / "sampling" / "n4" / "seed1.jsonl"
    first = json.loads(scored.read_text().splitlines()[0])
    assert all("step_scores" in c and c["prm_tokens"] > 0 for c in first["candidates"])
    assert (run / "results" / "logs" / "train_policy" / "tiny-a.log").read_text()
    tree = json.loads((run / "results" / "scored" / "toy" / "tiny-b" / "rebase" / "n4" / "seed0.jsonl")
                          .read_text().splitlines()[0])
    assert tree["tree"] and sum(g for _, g in tree["cost"]["decode"]) == sum(n["tokens"] for n in tree["tree"])


def test_complete_run_plans_nothing(run):
    result = snakemake(run, "-n")
    assert result.returncode == 0
    assert planned_jobs(result) == {}, result.stdout[-2000:]


def test_a_pinned_rerun_gives_the_same_bits_whatever_the_users_cpu_settings(run, tmp_path):
    """Two pinned runs give identical files, even when the user set other CPU kernels (numerics.pin, on by
    default, overrides them for every job): in a copy of the run, tiny-a retrained and its greedy and sampling runs
    generated, scored and measured again under the user's settings."""
    rerun = tmp_path / "rerun"
    # mtimes kept, so only what is removed is out of date; no logs, so that every log is the rerun's
    shutil.copytree(run / "results", rerun / "results", ignore=shutil.ignore_patterns("logs"))
    policy = "results/models/policy/tiny-a"
    runs = [f"results/{kind}/toy/tiny-a/{s}" for kind in ("generations", "scored") for s in ("greedy", "sampling")]
    outputs = [f"results/metrics/toy/tiny-a/{s}.{ext}" for s in ("greedy", "sampling") for ext in ("csv", "problems.csv")]
    for path in [policy, *runs, *outputs]:
        (shutil.rmtree if (rerun / path).is_dir() else os.remove)(rerun / path)
    result = snakemake(rerun, "--cores", "2", *outputs, env={**os.environ, **USER_CPU_SETTINGS})
    assert result.returncode == 0, result.stderr[-4000:]
    assert planned_jobs(result) == {"train_policy": 1, "generate": 3, "score": 3, "metrics": 2}
    compared = outputs + [f"{policy}/model.safetensors"]
    compared += [p.relative_to(run).as_posix() for d in runs for p in (run / d).rglob("*.jsonl")]
    assert len(compared) == 5 + 2 * 3
    assert [f for f in compared if (rerun / f).read_bytes() != (run / f).read_bytes()] == []
    # every model job of the rerun computed with the pinned kernels, not the user's
    logs = [log for rule in ("train_policy", "generate", "score") for log in (rerun / "results/logs" / rule).glob("*")]
    assert len(logs) == 7 and all("numerics: cpu_capability=AVX2" in log.read_text() for log in logs)


def test_changing_one_models_temperature_reruns_only_its_jobs(run, tmp_path):
    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    config["models"]["tiny-b"]["sampling"] = {"temperature": 0.7}
    path = tmp_path / "changed.yaml"
    path.write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(run, "-n", config=path))
    # prm_quality reads every policy's sampled candidates, tiny-b's among them
    assert jobs == {"generate": 2, "score": 2, "metrics": 1, "figure_error_vs_flops": 1, "figure_strategies": 3,
                    "figure_easy_hard": 1, "figure_compute_optimal": 1, "table4": 1, "table1": 1, "claims": 1,
                    "score_ablation": 2, "prm_quality": 1, "coverage_fit": 1, "compute_optimal_choice": 1,
                    "figure_compute_optimal_choice": 1, "all": 1}


def test_one_figure_target_builds_only_what_it_needs(tmp_path):
    target = "results/figures/error_vs_flops_toy_tiny-a.png"
    jobs = planned_jobs(snakemake(tmp_path, "-n", target))
    # tiny-a, and tiny-b because its likelihood is the verifier (config/ci.yaml prm.policy); no PRM is trained (the
    # Math-Shepherd PRM is an ablation only the verifier quality report needs) and nothing else of tiny-b runs
    assert "train_prm" not in jobs and "label_prm_data" not in jobs
    assert jobs["train_policy"] == 2
    # greedy (1 seed) + sampling (once at n=4, 2 seeds) + REBASE and MCTS (2 budgets x 2 seeds each) + beam search
    # and DVTS (1 budget x 2 seeds each), tiny-a's only
    assert jobs["generate"] == 1 + 2 + 4 + 4 + 2 + 2 and jobs["metrics"] == 6
    assert "claims" not in jobs and "table4" not in jobs


def test_bad_config_fails_before_any_job(tmp_path):
    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    config["strategies"]["sampling"]["budgets"] = [1, -2]
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--cores", "1", config=path)
    assert result.returncode != 0
    assert "strategies.sampling.budgets.1" in result.stderr + result.stdout
    assert not (tmp_path / "results").exists()


def test_snakemake_report_holds_every_figure_with_its_caption(run):
    """`snakemake --report` on the finished run, offline: every figure and table of the study is in the page."""
    result = snakemake(run, "--report", "report.html")
    assert result.returncode == 0, result.stderr[-3000:]
    page = (run / "report.html").read_text(errors="replace")
    figures = sorted(p.name for p in (run / "results" / "figures").glob("*.png"))
    assert figures and all(name in page for name in figures), [n for n in figures if n not in page]
    assert "table4_toy.csv" in page and "claims.csv" in page
    assert "paired bootstrap" in page  # the claims caption, rendered
    assert "one curve per aggregation" in page  # an error-vs-FLOPs caption
