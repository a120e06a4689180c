"""Packaging: the lock file of the CPU environment covers what pyproject asks for."""
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_the_cpu_lock_pins_every_dependency_within_its_range():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lock = {}
    for line in (ROOT / "envs" / "cpu-lock.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            lock[re.sub(r"[-_.]+", "-", name).lower()] = version
    wanted = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    for req in wanted:
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name == "torch":
            assert name not in lock  # the README's command pins torch itself (CPU build)
            continue
        assert name in lock, f"envs/cpu-lock.txt lacks {req.name}: bash envs/lock-cpu.sh"
        assert req.specifier.contains(lock[name], prereleases=True), f"{req.name}=={lock[name]} outside {req}"


def test_a_non_editable_install_validates_configs_and_grades(tmp_path):
    """Package data (the config schema) comes with the installed package, not from the checkout: install the
    project as a wheel would be, into a fresh prefix, and use it from a directory outside the repository."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    source, prefix = tmp_path / "source", tmp_path / "site"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "src"):  # a copy: the build leaves its build/ folder there
        (shutil.copytree if name == "src" else shutil.copy)(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(prefix), str(source)], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "p.jsonl").write_text(json.dumps({"text": "Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки",
                                                   "answer": "7"}) + "\n")
    config = ROOT / "config" / "ci.yaml"
    code = ("import infscale, yaml; from infscale.core.validation import validate_config; "
            f"c = validate_config(yaml.safe_load(open({str(config)!r}))); "
            "print(infscale.__file__); print(c['report']['claims']['auc_gate'])")
    env = {**os.environ, "PYTHONPATH": str(prefix)}
    out = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0].startswith(str(prefix)) and out[1] == "0.6"
    graded = subprocess.run([sys.executable, "-m", "infscale.cli", "p.jsonl", "--dataset", "gsm8k"], cwd=elsewhere,
                            env=env, capture_output=True, text=True, check=True)
    assert json.loads(graded.stdout)["accuracy"] == 1.0
