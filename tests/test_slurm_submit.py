"""What the paper study asks SLURM for: the sbatch line the executor plugin builds from the study config and the
profile (its own get_submit_command, a spy on what sbatch would get), the memory a 1 TB node can grant, and the
downloads done before any compute job (base weights; gated models need a token). Nothing is submitted or fetched."""
import re
import types
from pathlib import Path

import pytest
import yaml

from infscale.core import config as cfg
from infscale.core.validation import validate_config

ROOT = Path(__file__).resolve().parents[1]
GPU_RULES = ("train_policy", "train_prm", "generate", "score")
NODE_MEM_MB = 900_000  # a typical "1 TB" node's RealMemory, less what the OS keeps


@pytest.fixture(scope="module")
def paper():
    return validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


class _Resources(dict):
    __getattr__ = dict.__getitem__


def sbatch_line(paper, rule, model, strategy=None):
    """The plugin's sbatch call for one job: profile default-resources < set-resources < the study's resources,
    with the profile's executor settings (slurm-requeue)."""
    submit_string = pytest.importorskip("snakemake_executor_plugin_slurm.submit_string")
    from snakemake_executor_plugin_slurm import ExecutorSettings

    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    res = {**profile["default-resources"], **cfg.job_resources(paper, rule, model, strategy),
           **profile["set-resources"].get(rule, {})}
    job = types.SimpleNamespace(resources=_Resources(res), threads=res.pop("threads"), is_group=lambda: False)
    params = dict(run_uuid="u", slurm_logfile="log", comment_str=f"rule_{rule}", account="", partition="", workdir="")
    settings = ExecutorSettings(requeue=profile.get("slurm-requeue", False))
    return submit_string.get_submit_command(job, params, settings)


def test_a_failed_job_is_retried_and_a_preempted_one_requeued(paper):
    """profiles/slurm: keep going past a failed job, resubmit it (it resumes from shards or checkpoints), and let
    SLURM requeue a preempted job (tests/test_cluster.py shows each on a one-node SLURM)."""
    profile = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["keep-going"] is True and profile["retries"] >= 2 and profile["rerun-incomplete"] is True
    assert " --requeue" in sbatch_line(paper, "generate", "llemma-34b", "rebase")
    assert "--cpus-per-task=16" in sbatch_line(paper, "generate", "llemma-34b", "rebase")  # generate_tree


@pytest.mark.parametrize("rule", GPU_RULES)
def test_gpu_jobs_stay_on_one_node_with_memory_a_node_grants(paper, rule):
    for model in paper["models"]:
        line = sbatch_line(paper, rule, model)
        assert "--nodes=1" in line, line
        mem = int(re.search(r"--mem (\d+)", line).group(1))
        assert mem <= NODE_MEM_MB, f"{rule} {model}: --mem {mem}"


def test_training_jobs_fit_their_memory(paper):
    """Host memory of the 34B jobs should they offload (offload: auto): the model on rank 0 only (fp32, 4 bytes a
    parameter) and the offloaded FSDP shards (fp32 weights, gradients and Adam: 16 bytes a parameter)."""
    from infscale.training import memory

    for rule, spec in (("train_policy", paper["models"]["llemma-34b"]), ("train_prm", paper["prm"])):
        plan = memory.plan(spec["params"], spec["train"], 8)
        assert spec["train"]["offload"] == "auto" and plan.host_rank0 == 4 * spec["params"]
        assert plan.host(offload=True) / 1e6 < cfg.job_resources(paper, rule, "llemma-34b")["mem_mb"]


def test_hub_bases_are_fetched_before_training(paper):
    """train_policy / train_prm read a local copy of their base (results/models/base/<org--name>), made by the
    local fetch_base rule, so compute nodes without network train from it."""
    text = (ROOT / "rules" / "finetune.smk").read_text()
    assert "rule fetch_base:" in text and "localrule: True" in text.split("rule fetch_base:")[1].split("rule ")[0]
    assert cfg.base_slug("meta-llama/Meta-Llama-3-8B-Instruct") == "meta-llama--Meta-Llama-3-8B-Instruct"


def test_gated_models_need_a_token_before_downloading(monkeypatch, tmp_path):
    import huggingface_hub

    from infscale.core import models

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.setattr("infscale.core.models.get_token", lambda: None, raising=False)
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append((a, k)) or str(tmp_path))
    with pytest.raises(PermissionError, match="meta-llama/Meta-Llama-3-8B-Instruct is a gated model: set HF_TOKEN"):
        models.fetch_checkpoint("meta-llama/Meta-Llama-3-8B-Instruct", tmp_path / "out")
    assert calls == [] and not (tmp_path / "out").exists()
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    models.fetch_checkpoint("mistralai/Mistral-7B-v0.1", tmp_path / "out")
    assert calls[0][0] == ("mistralai/Mistral-7B-v0.1",) and calls[0][1]["token"] == "hf_test"
    models.fetch_checkpoint("EleutherAI/pythia-410m", tmp_path / "out2")  # open models: no token needed
