"""config/ci.yaml on a real one-node SLURM cluster through `snakemake --profile profiles/slurm` (the executor
plugin, sbatch, srun), checked file by file against the local run with the same seeds and threads.

The cluster is Debian's munge/slurmctld/slurmd, started and stopped here (tests/minislurm.py). Without them
the test skips; with INFSCALE_REQUIRE_SLURM=1 (set by .ci/run) the skip is a failure, so CI cannot skip it."""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from minislurm import MiniSlurm, missing
from workflow_runs import ROOT, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.cluster]

# jobs of ci.yaml (tree_scores: local); the PRM is the verifier ablation (its label, train and score_ablation jobs)
HEAVY = {"train_policy": 2, "label_prm_data": 1, "train_prm": 1, "generate": 22, "score": 6, "score_ablation": 4}
# Wall-clock facts, not results: per-job timings and logs. PDFs carry their creation time (compared without it).
NOT_RESULTS = ("logs/", "benchmarks/")
TIMING_KEYS = re.compile(r"seconds|runtime|per_second")


@pytest.fixture(scope="module")
def slurm():
    reason = missing()
    if reason:
        if os.environ.get("INFSCALE_REQUIRE_SLURM") == "1":
            pytest.fail(f"INFSCALE_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    cluster = MiniSlurm().start()
    yield cluster
    cluster.stop()
    shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm-run")
    start = time.time()
    result = snakemake(workdir, "--profile", str(ROOT / "profiles" / "slurm"),
                       # no accounting on the test cluster: job states from squeue (MinJobAge=3600), no account
                       "--slurm-status-command", "squeue", "--slurm-no-account",
                       "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
                       "--slurm-logdir", str(workdir / "slurm_logs"), "--latency-wait", "5", env=slurm.env)
    elapsed = time.time() - start
    assert result.returncode == 0, result.stderr[-6000:] + "\n" + slurm.logs()
    print(f"[slurm run] {elapsed:.0f} s")
    return workdir, result


def comparable_files(results: Path) -> dict[str, Path]:
    files = {}
    for path in results.rglob("*"):
        rel = path.relative_to(results).as_posix()
        if path.is_file() and path.name != ".snakemake_timestamp" and not rel.startswith(NOT_RESULTS):
            files[rel] = path
    return files


def without_timings(value):
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if not TIMING_KEYS.search(k)}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def content(path: Path):
    """What must be equal between two runs: the bytes, except timing fields of JSON files and a PDF's dates."""
    data = path.read_bytes()
    if path.suffix == ".json":
        return without_timings(json.loads(data))
    if path.suffix == ".pdf":
        return re.sub(rb"/(CreationDate|ModDate) \(D:[^)]*\)", b"", data)
    return data


def test_slurm_run_equals_the_local_run(slurm_run, ci_run):
    slurm_files = comparable_files(slurm_run[0] / "results")
    local_files = comparable_files(ci_run / "results")
    assert sorted(slurm_files) == sorted(local_files)
    kinds = {p.rsplit(".", 1)[-1] for p in local_files}
    assert {"jsonl", "csv", "md", "safetensors", "png", "pdf", "json"} <= kinds
    differing = [rel for rel in sorted(local_files) if content(slurm_files[rel]) != content(local_files[rel])]
    assert differing == [], f"{len(differing)} of {len(local_files)} files differ"


def test_model_jobs_ran_as_slurm_jobs_and_light_rules_locally(slurm_run, slurm):
    # Without accounting, finished jobs stay in squeue for MinJobAge; the plugin names each job's rule in
    # its comment (rule_<name>_wildcards_...).
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%k|%T"], env=slurm.env, capture_output=True,
                         text=True, check=True).stdout
    jobs = [line.split("|") for line in out.splitlines()]
    per_rule = {}
    for comment, state in jobs:
        assert state == "COMPLETED", (comment, state)
        rule = re.match(r"rule_(\w+?)_wildcards", comment + "_wildcards").group(1)
        per_rule[rule] = per_rule.get(rule, 0) + 1
    assert per_rule == HEAVY
    log = slurm_run[1].stderr
    for rule in ("prepare_data", "train_tokenizer", "tree_scores", "metrics", "figure_strategies", "claims", "all"):
        assert f"localrule {rule}:" in log
