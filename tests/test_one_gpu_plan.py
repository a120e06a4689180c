"""config/one-gpu.yaml: released instruct policies of one family at three sizes and a released PRM, no fine-tuning;
at most 24 GPU hours on one H100 by the estimate (the PRM included); it plans offline without a warning, and every
GPU job asks for exactly the one GPU it uses. Nothing here downloads or runs a job."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_paper_plan import OFFLINE_SNAKEMAKE

from infscale.core import config as cfg
from infscale.core.policy_format import policy_format
from infscale.core.validation import validate_config
from infscale.estimate import estimate

ROOT = Path(__file__).resolve().parents[1]
ONE_GPU_YAML = ROOT / "config" / "one-gpu.yaml"


@pytest.fixture(scope="module")
def one_gpu():
    return validate_config(yaml.safe_load(ONE_GPU_YAML.read_text()))


def dry_run(workdir, *args):
    cmd = [sys.executable, "-c", OFFLINE_SNAKEMAKE, *args, "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(ONE_GPU_YAML), "-n"]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(workdir),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=workdir, env=env)
    out = (result.stdout + result.stderr).replace(str(workdir), "<workdir>")
    assert result.returncode == 0, out[-3000:]
    return out


def test_one_gpu_study_is_released_instruct_policies_and_a_released_prm(one_gpu):
    models = one_gpu["models"]
    assert [m["checkpoint"] for m in models.values()] == [f"Qwen/Qwen2.5-{s}-Instruct" for s in ("0.5B", "1.5B", "3B")]
    assert all(cfg.model_kind(one_gpu, m) == "checkpoint" for m in models)  # no fine-tuning
    for slug in models:
        fmt = policy_format(one_gpu, slug)
        assert (fmt.prompt, fmt.step_delimiter, fmt.answer, fmt.stop) == ("chat", "\n\n", "boxed", "eos")
    sizes = [m["params"] for m in models.values()]
    assert sizes == sorted(sizes) and len(set(sizes)) == 3
    prm = one_gpu["prm"]
    assert (prm["source"], prm["family"], prm["checkpoint"]) == ("checkpoint", "qwen_prm", "Qwen/Qwen2.5-Math-PRM-7B")
    assert not prm.get("trust_remote_code")
    assert set(one_gpu["evaluate"]["datasets"]) == {"math500", "gsm8k"}
    s = one_gpu["strategies"]
    assert s["sampling"]["budgets"] == [2**i for i in range(9)]  # up to 256
    for tree in ("rebase", "beam_search", "dvts"):
        assert min(s[tree]["budgets"]) >= 4 and max(s[tree]["budgets"]) <= 64
    assert set(one_gpu["evaluate"]["strategies"]) == {"greedy", "sampling", "rebase", "beam_search", "dvts"}


def test_one_gpu_study_fits_a_day_on_one_h100_prm_included(one_gpu):
    stages = {s.stage: s for s in estimate(one_gpu)}
    assert set(stages) == {"generate", "score"}  # nothing to train
    assert stages["score"].flops > 0  # the PRM is counted
    total = sum(s.gpu_hours() for s in stages.values())
    assert 5 < total <= 24, total
    # every job on one GPU: a policy (vLLM) and, for a tree search, the PRM beside it
    for slug in one_gpu["models"]:
        for rule, strategy in (("generate", None), ("generate", "rebase"), ("score", None)):
            assert cfg.job_resources(one_gpu, rule, slug, strategy)["gpu"] == 1


def test_one_gpu_plan_is_offline_without_warning_and_asks_the_gpus_it_uses(tmp_path, one_gpu):
    from infscale.search.placement import gpus_used, plan_devices

    out = dry_run(tmp_path)
    assert "localrules directive" not in out and "warning" not in out.lower(), out[:3000]
    jobs = re.findall(r"rule (generate|score):.*?wildcards: dataset=\w+, model=([\w.-]+), strategy=(\w+).*?"
                      r"resources: .*?gpu=(\d+)", out, flags=re.S)
    runs = sum(len(cfg.generation_runs(one_gpu, m, s)) * len(cfg.seeds_for(one_gpu, s))
               for m in one_gpu["models"] for s in one_gpu["evaluate"]["strategies"])
    assert sum(rule == "generate" for rule, *_ in jobs) == 2 * runs  # two data sets
    for rule, model, strategy, gpu in jobs:
        tree = rule == "generate" and strategy in cfg.TREE_STRATEGIES
        used = gpus_used(plan_devices(int(gpu), tree, None), cfg.engine_params(one_gpu, model)["name"])
        assert int(gpu) == used == 1, (rule, model, strategy, gpu)


def test_the_prm_families_template_tokens_count_in_its_flops(one_gpu):
    import copy

    sampled = copy.deepcopy(one_gpu)
    sampled["evaluate"]["strategies"] = ["sampling"]
    plain = copy.deepcopy(sampled)
    plain["prm"]["family"] = "math_shepherd"
    score = {name: {s.stage: s for s in estimate(c)}["score"].flops for name, c in (("qwen", sampled), ("ms", plain))}
    # sampling at 256 once per seed: each candidate's read holds the question once, with the template's tokens
    # (a system turn and ChatML markers, no per-step tokens: <extra_0> takes the delimiter's place) on top
    from infscale.estimate import PRM_TEMPLATE_TOKENS

    fixed, per_step = PRM_TEMPLATE_TOKENS["qwen_prm"]
    assert fixed > 0 and per_step == 0
    problems = {"math500": 500, "gsm8k": 1319}
    reads = sum(problems[d] * 256 for d in sampled["evaluate"]["datasets"]) * len(sampled["models"])
    assert score["qwen"] - score["ms"] == pytest.approx(2 * 6.53e9 * fixed * reads)
