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
from test_numerics import USER as USER_CPU_SETTINGS
from workflow_runs import ROOT, snakemake

pytestmark = [pytest.mark.workflow, pytest.mark.cluster]

# jobs of ci.yaml (tree_scores: local); the PRM is the verifier ablation (its label, train and score_ablation jobs)
HEAVY = {"train_policy": 2, "label_prm_data": 1, "train_prm": 1, "generate": 30, "score": 6, "score_ablation": 4}
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
                       "--slurm-logdir", str(workdir / "slurm_logs"), "--latency-wait", "5",
                       # other CPU kernels set by the user: the workflow's pin (numerics.pin) overrides them on the
                       # node, so the files still equal the local run's
                       env={**slurm.env, **USER_CPU_SETTINGS})
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
    # the cluster's model jobs computed with the pinned kernels, not those the user set
    logs = list((slurm_run[0] / "results" / "logs" / "train_policy").glob("*.log"))
    assert logs and all("numerics: cpu_capability=AVX2" in log.read_text() for log in logs)


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


# --- what a failed or preempted job does under profiles/slurm (keep-going, retries, --requeue) -----------------------

ROBUST_SNAKEFILE = '''
rule all:
    input: "sharded.json", "preempted.json", "independent.txt", "needs_broken.txt"

rule sharded:  # killed after two of its three shards on its first attempt (a node failure)
    output: "sharded.json"
    resources: attempt=lambda wc, attempt: attempt
    shell: "{python} {workflow.basedir}/resumable.py {output} {resources.attempt}"

rule preempted:  # requeued by SLURM while it runs (the test preempts it), then runs again in the same SLURM job
    output: "preempted.json"
    priority: 10
    resources: attempt=lambda wc, attempt: attempt
    shell: "{python} {workflow.basedir}/preempted.py {output} {resources.attempt}"

rule broken:  # fails on every attempt
    output: "broken.txt"
    shell: "exit 3"

rule needs_broken:
    input: "broken.txt"
    output: "needs_broken.txt"
    shell: "touch {output}"

rule independent:  # runs although another job failed (keep-going)
    output: "independent.txt"
    shell: "touch {output}"
'''
RESUMABLE = '''
import json, os, signal, sys
from infscale.search.shards import run_in_shards

out, attempt = sys.argv[1], int(sys.argv[2])


def work(shard, i):
    if attempt == 1 and i == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return [dict(r, attempt=attempt) for r in shard]


records, report = run_in_shards([{"id": i} for i in range(6)], 2, out + ".shards", "stamp", work)
json.dump({"report": str(report), "attempts": [r["attempt"] for r in records]}, open(out, "w"))
'''
PREEMPTED = '''
import json, os, sys, time
from pathlib import Path

out, attempt = sys.argv[1], int(sys.argv[2])
runs = len(list(Path(out).parent.glob(Path(out).name + ".started*")))  # the job step drops SLURM_RESTART_COUNT
Path(out + f".started{runs}").write_text(os.environ["SLURM_JOB_ID"])
if runs == 0:
    time.sleep(300)  # the test requeues the job meanwhile
json.dump({"runs": runs + 1, "attempt": attempt}, open(out, "w"))
'''


def _preempt_when_started(workdir, env, timeout=600):
    """Requeue the `preempted` job once it runs (what SLURM does to a preempted job with --requeue), then let it
    start again at once (a requeued job otherwise waits two minutes for its begin time)."""
    started = workdir / "preempted.json.started0"
    deadline = time.time() + timeout
    while not started.exists():
        if time.time() > deadline:
            return
        time.sleep(0.5)
    job = started.read_text().strip()
    subprocess.run(["scontrol", "requeue", job], env=env, check=True)
    while time.time() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job, "--states=all", "-o", "%T"], env=env,
                               capture_output=True, text=True).stdout.strip()
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env, check=True)
            return
        time.sleep(0.5)


def test_failed_jobs_are_retried_and_resume_and_preempted_jobs_are_requeued(slurm, tmp_path):
    import sys
    import threading

    (tmp_path / "Snakefile").write_text(ROBUST_SNAKEFILE.replace("{python}", sys.executable))
    (tmp_path / "resumable.py").write_text(RESUMABLE)
    (tmp_path / "preempted.py").write_text(PREEMPTED)
    env = dict(slurm.env, PYTHONPATH=str(ROOT / "src"))
    preempt = threading.Thread(target=_preempt_when_started, args=(tmp_path, env))
    preempt.start()
    cmd = [sys.executable, "-m", "snakemake", "-s", str(tmp_path / "Snakefile"), "-d", str(tmp_path),
           "--profile", str(ROOT / "profiles" / "slurm"), "--slurm-status-command", "squeue", "--slurm-no-account",
           "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2",
           "--slurm-logdir", str(tmp_path / "slurm_logs"), "--latency-wait", "5"]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    preempt.join()
    log = result.stderr
    assert result.returncode != 0 and "broken" in log  # the failure is reported ...
    assert (tmp_path / "independent.txt").exists() and not (tmp_path / "needs_broken.txt").exists()  # ... not fatal
    assert len(re.findall(r"^rule broken:", log, re.M)) == 4, log[-3000:]  # 1 attempt + 3 retries (profile)
    sharded = json.loads((tmp_path / "sharded.json").read_text())
    assert sharded["report"] == "3 shards: 2 reused from an interrupted run, 1 computed"  # resumed, not redone
    assert sharded["attempts"] == [1, 1, 1, 1, 2, 2]
    preempted = json.loads((tmp_path / "preempted.json").read_text())
    assert preempted == {"runs": 2, "attempt": 1}, log[-3000:]  # run again by SLURM: no Snakemake retry spent
    job = (tmp_path / "preempted.json.started0").read_text()
    assert (tmp_path / "preempted.json.started1").read_text() == job  # the same SLURM job, requeued
    shown = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True, text=True).stdout
    assert "JobState=COMPLETED" in shown and "Restarts=1" in shown and "Requeue=1" in shown
