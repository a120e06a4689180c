"""A generation job killed with SIGKILL halfway resumes from its finished shards and ends with the same output
as an uninterrupted run (real snakemake, real models, config/ci.yaml with small shards)."""
import re
import signal
import subprocess
import time

import psutil
import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE

pytestmark = pytest.mark.workflow


def snakemake_cmd(workdir, config, *args):
    return SNAKEMAKE + ["-d", str(workdir), "--configfile", str(config), "--cores", "1", *args]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A workdir with the tiny-a policy and the PRM trained; 24 test problems in 12 shards of 2."""
    workdir = tmp_path_factory.mktemp("resume")
    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    config["shard_size"] = 2
    config["strategies"]["sampling"]["budgets"] = [1, 32]  # long enough shards to be killed in
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(snakemake_cmd(workdir, path, "results/models/policy/tiny-a", "results/models/prm/prm-ci",
                                        "results/data/toy/test.jsonl"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return workdir, path


def kill_job_after_shards(cmd, shard_dir, shards: int, timeout=300):
    """Start snakemake, SIGKILL its generate job once `shards` shards are on disk; return what was on disk."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + timeout
    while len(list(shard_dir.glob("shard-*.jsonl"))) < shards:
        assert proc.poll() is None, f"snakemake ended before the kill: {proc.stderr.read()[-2000:]}"
        assert time.time() < deadline, "no shard written in time"
        time.sleep(0.02)
    jobs = [p for p in psutil.Process(proc.pid).children(recursive=True) if "generate.py" in " ".join(p.cmdline())]
    assert jobs, "the generate job's process was not found"
    for p in jobs:
        p.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    return {p.name: p.stat().st_mtime_ns for p in shard_dir.glob("shard-*.jsonl")}


@pytest.mark.parametrize("strategy, n", [("sampling", 32), ("rebase", 4)])
def test_killed_generation_resumes_and_matches_an_uninterrupted_run(study, strategy, n):
    workdir, config = study
    target = f"results/generations/toy/tiny-a/{strategy}/n{n}/seed0.jsonl"
    output, shard_dir = workdir / target, workdir / f"{target}.shards"

    finished = kill_job_after_shards(snakemake_cmd(workdir, config, target), shard_dir, shards=3)
    assert not output.exists()  # a killed job leaves no output to be taken as done
    assert 3 <= len(finished) < 12
    assert all(len(list(shard_dir.glob(f".{name}.*"))) <= 1 for name in finished)  # at most the temp in flight

    resumed = subprocess.run(snakemake_cmd(workdir, config, target), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = workdir / f"results/logs/generate/toy_tiny-a_{strategy}_n{n}_seed0.log"
    reused, computed = map(int, re.findall(r"12 shards: (\d+) reused from an interrupted run, (\d+) computed",
                                           log.read_text())[-1])
    assert reused == len(finished) and reused + computed == 12
    assert shard_dir.exists()  # kept until the score job reads the output
    after_resume = output.read_bytes()

    # A job killed after writing its output but before Snakemake recorded it is run again with its output
    # deleted (as --force does here): it computes nothing.
    again = subprocess.run(snakemake_cmd(workdir, config, target, "--force"), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "12 shards: 12 reused from an interrupted run, 0 computed" in log.read_text()
    assert output.read_bytes() == after_resume

    scored = target.replace("generations/", "scored/")
    done = subprocess.run(snakemake_cmd(workdir, config, scored), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not shard_dir.exists()  # the score job removed the shards

    fresh = subprocess.run(snakemake_cmd(workdir, config, scored, "--forcerun", "generate"), capture_output=True,
                           text=True)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert "12 shards: 0 reused from an interrupted run, 12 computed" in log.read_text()
    assert output.read_bytes() == after_resume
