"""config/code.yaml end to end, shrunk to CI size (a few minutes on 2 cores): the toy code task trained, sampled
and searched, every candidate run in the sandbox, then metrics, figures, claims and the answer table."""
import json

import pandas as pd
import pytest
import yaml
from workflow_runs import ROOT, snakemake

from infscale.core import codesteps

pytestmark = pytest.mark.workflow


def small_code_config(path):
    config = yaml.safe_load((ROOT / "config" / "code.yaml").read_text())
    config["seeds"] = [0]  # one seed: the plumbing, in a few minutes
    config["datasets"]["code"]["toy_code"].update(n_train=1500, n_prm=4, n_test=12)
    for model in config["models"].values():
        model["arch"] = {"hidden_size": 32, "num_layers": 1, "num_heads": 2}
        model["train"].update(steps=150, warmup_steps=10)
    config["strategies"]["sampling"]["budgets"] = [1, 2, 4]
    config["strategies"]["rebase"]["budgets"] = [2, 4]
    config["report"]["table1"] = {"rebase_budget": 2}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def code_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("code-run")
    config = small_code_config(workdir / "code.yaml")
    result = snakemake(workdir, "--cores", "2", config=config)
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir


def test_every_candidate_ran_and_votes_by_behaviour(code_run):
    r = code_run / "results"
    for strategy, n in (("sampling", 4), ("rebase", 2)):
        records = [json.loads(line) for line in
                   (r / "scored" / "code" / "code-m" / strategy / f"n{n}" / "seed0.jsonl").read_text().splitlines()]
        assert len(records) == 12
        for rec in records:
            for c in rec["candidates"]:
                assert c["status"] in ("passed", "failed", "timeout", "error", "memory", "no_program")
                assert c["passed"] == (c["status"] == "passed") and "step_scores" in c
                assert c["answer"] is None or json.loads(c["answer"])  # a behaviour: outputs on the probes
            if strategy == "rebase":  # every node is one logical line of its path
                for node in rec["tree"]:
                    assert len(codesteps.split_steps(node["text"])) <= 1 or node["dropped"]


def test_metrics_tables_and_claims(code_run):
    r = code_run / "results"
    metrics = pd.concat(pd.read_csv(r / "metrics" / "code" / m / f"{s}.csv")
                        for m in ("code-s", "code-m") for s in ("greedy", "sampling", "rebase"))
    assert ((metrics["accuracy"] >= 0) & (metrics["accuracy"] <= 1)).all()
    assert ((metrics["coverage"] >= 0) & (metrics["coverage"] <= 1)).all()  # pass@n
    sampling = metrics[(metrics.strategy == "sampling") & (metrics.subset == "all")]
    for (_, seed, agg), g in sampling.groupby(["model", "seed", "aggregation"]):
        g = g.sort_values("n")
        assert g["coverage"].is_monotonic_increasing  # pass@k never falls with k
        assert g["policy_flops"].iloc[-1] == pytest.approx(4 * g["policy_flops"].iloc[0])  # n x one sample
    t1 = pd.read_csv(r / "tables" / "table1_code.csv")
    assert set(t1["strategy"]) == {"sampling", "rebase"}
    claims = pd.read_csv(r / "claims.csv")
    assert set(claims["verdict"]) <= {"holds", "fails", "inconclusive", "cannot_check"}
    assert "| budget (FLOPs) |" in (r / "tables" / "compute_optimal_choice.md").read_text()
    assert (r / "figures" / "strategies_code_code-m_weighted_majority.png").read_bytes()[:4] == b"\x89PNG"
