"""Running the real Snakemake on a study in a temporary directory: shared by the workflow and cluster tests."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile")]
CI_CONFIG = ROOT / "config" / "ci.yaml"


def snakemake(workdir, *args, config=None, env=None):
    cmd = SNAKEMAKE + ["-d", str(workdir), "--configfile", str(config or CI_CONFIG), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, env=env, check=False)


def planned_jobs(result):
    """Job counts of a dry run (the 'Job stats' table); empty when nothing is to be done."""
    counts = {}
    for m in re.finditer(r"^(\w+)\s+(\d+)$", result.stdout + result.stderr, re.MULTILINE):
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def local_ci_run(workdir):
    """config/ci.yaml end to end with `snakemake --cores 2`; fails with Snakemake's own words."""
    result = snakemake(workdir, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir
