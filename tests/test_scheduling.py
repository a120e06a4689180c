"""On few cores Snakemake runs the ready job of highest priority first. Every PRM-guided job waits on the
verifier's policy, and the paper's PRM ablation is a chain of its own behind it (rollout labels, then PRM
training): those come first in the default study's plan, the other policies' training after them, generation last.
Checked on the plan Snakemake makes of config.yaml (a dry run; nothing runs)."""
import os
import re
import subprocess
import sys
from pathlib import Path

from test_paper_plan import OFFLINE_SNAKEMAKE

ROOT = Path(__file__).resolve().parents[1]


def planned_priorities(workdir) -> dict[tuple[str, str], int]:
    """(rule, wildcards) -> priority of every job in the default study's plan."""
    cmd = [sys.executable, "-c", OFFLINE_SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(ROOT / "config.yaml"), "-n", "--cores", "2"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(workdir), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=workdir, env=env)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    jobs = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        rule = re.match(r"(?:local)?rule (\w+):", block)
        if rule:
            wildcards = re.search(r"wildcards: (.*)", block)
            priority = re.search(r"priority: (\d+)", block)
            jobs[(rule.group(1), wildcards.group(1) if wildcards else "")] = int(priority.group(1)) if priority else 0
    return jobs


def test_the_verifiers_policy_and_the_prm_chain_are_scheduled_first(tmp_path):
    jobs = planned_priorities(tmp_path)
    train = {w.removeprefix("model="): p for (rule, w), p in jobs.items() if rule == "train_policy"}
    assert set(train) == {"pythia-xs", "pythia-s", "pythia-m", "verifier-m"}
    first = train.pop("verifier-m")  # likelihood-m reads it, and prm-toy's rollouts and initial weights come from it
    assert all(first > p for p in train.values()), train
    chain = [p for (rule, _), p in jobs.items() if rule in ("label_prm_data", "train_prm")]
    assert chain == [first, first]
    later = [p for (rule, _), p in jobs.items() if rule in ("generate", "score", "score_ablation", "metrics")]
    assert later and max(later) < min(train.values())
