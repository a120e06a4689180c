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
