"""The smoke target: every training job's smoke run planned offline for config/paper.yaml on the resources its job
asks for, and run end to end on CPU for config/ci.yaml."""
import json
import sys
from pathlib import Path

import pytest
import yaml

from infscale import smoke

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))


def test_longest_rows_are_the_batch_with_the_most_text():
    rows = [{"question": "q" * n, "solution": "s" * (10 - n)} for n in range(10)] + \
        [{"question": "q" * 7, "solution": "s" * 20}, {"question": "", "solution": "s" * 15}]
    chosen = smoke.longest_rows(rows, 2, ("question", "solution"))
    assert [len(r["question"]) + len(r["solution"]) for r in chosen] == [27, 15] * smoke.STEPS


def test_paper_smoke_plans_offline_on_each_jobs_resources(tmp_path):
    from test_paper_plan import plan

    from infscale.core import config as cfg
    from infscale.core.validation import validate_config

    counts = plan(tmp_path, "smoke")
    paper = validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    assert counts["smoke_train_policy"] == len(cfg.trained_models(paper)) == 9
    assert counts["smoke_train_prm"] == 1 and counts["smoke_table"] == 1
    assert not {"train_policy", "train_prm", "generate", "score"} & set(counts)  # nothing of the study itself


def test_paper_smoke_rows_carry_the_estimates_figures():
    from infscale.core.validation import validate_config
    from infscale.estimate import training_jobs

    paper = validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    job = {j.name: j for j in training_jobs(paper)}["llemma-34b-rm"]
    figures = smoke.estimate_figures(paper, "train_prm", "llemma-34b-rm")
    assert figures["gpu_gib"] == pytest.approx(job.plan.per_gpu / 2**30)
    assert figures["host_gib"] == pytest.approx(job.plan.host(job.offload) / 2**30)
    steps = 2 * 445_000 / 128  # two epochs of Math-Shepherd in batches of 128
    assert figures["seconds_per_step"] == pytest.approx(job.hours["compute"] * 3600 / steps)
    assert smoke.estimate_figures({"models": {}}, "train_prm", "x") is None  # nothing to size


@pytest.mark.workflow
def test_ci_smoke_runs_end_to_end_on_cpu(tmp_path):
    from workflow_runs import snakemake

    result = snakemake(tmp_path, "--cores", "2", "smoke")
    assert result.returncode == 0, result.stderr[-4000:]
    rows = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "results/smoke/train_policy").glob("*.json")}
    assert set(rows) == {"tiny-a", "tiny-b"}
    for row in rows.values():
        assert row["ranks"] == 1 and row["peak_gpu_gib"] is None  # CPU: no GPU figure
        assert 0.05 < row["peak_host_gib"] < 8 and 0 < row["seconds_per_step"] < 60
    table = (tmp_path / "results/smoke/smoke.md").read_text()
    assert "| tiny-a | 0 | no | - (-) |" in table and "| tiny-b |" in table
    assert not (tmp_path / "results/models/policy").exists()  # the study's own jobs did not run
    assert not list((tmp_path / "results/smoke").glob(".*.smoke"))  # the smoke runs' work directories went
