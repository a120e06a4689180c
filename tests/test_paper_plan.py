"""config/paper.yaml plans offline: the whole DAG with `snakemake -n` (network blocked) in seconds, and each paper
figure or table target plans only the jobs it needs. Nothing here downloads or runs a job."""
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from infscale.core import config as cfg
from infscale.core.validation import validate_config

ROOT = Path(__file__).resolve().parents[1]
PAPER_YAML = ROOT / "config" / "paper.yaml"
# Snakemake with every socket connection refused: planning must not touch the hub.
OFFLINE_SNAKEMAKE = (
    "import socket, sys\n"
    "def refuse(*a, **k):\n"
    "    raise OSError('network access during planning')\n"
    "socket.socket.connect = refuse\n"
    "socket.create_connection = refuse\n"
    "from snakemake.cli import main\n"
    "sys.argv[0] = 'snakemake'\n"
    "main()\n"
)


def plan(workdir, *targets, config=PAPER_YAML):
    cmd = [sys.executable, "-c", OFFLINE_SNAKEMAKE, *targets, "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
           "--configfile", str(config), "-n", "--quiet", "rules"]
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(workdir),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # this checkout's package, not the one installed
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=workdir, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    counts = {}
    for line in (result.stdout + result.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture(scope="module")
def paper():
    return validate_config(yaml.safe_load(PAPER_YAML.read_text()))


def runs(config, dataset, model, strategy):
    """generate (= score) jobs of one (dataset, model, strategy)."""
    return len(cfg.generation_runs(config, model, strategy)) * len(cfg.seeds_for(config, strategy))


def test_paper_config_has_the_papers_setup(paper):
    assert paper["strategies"]["sampling"]["budgets"] == [2**i for i in range(9)]  # 1 ... 256
    assert paper["strategies"]["sampling"]["temperature"] == 1.0 and paper["strategies"]["sampling"]["max_new_tokens"] == 1024
    assert paper["strategies"]["mcts"]["budgets"] == [32, 64, 128] and paper["strategies"]["rebase"]["balance_temperature"] == 0.1
    assert paper["engine"]["name"] == "vllm"
    models = paper["models"]
    assert {m["hub_id"] for m in models.values() if "hub_id" in m} == {
        *(f"EleutherAI/pythia-{s}" for s in ("410m", "1.4b", "2.8b", "6.9b", "12b")), "EleutherAI/llemma_7b",
        "EleutherAI/llemma_34b", "mistralai/Mistral-7B-v0.1", "meta-llama/Meta-Llama-3-8B-Instruct"}
    # Table 3: the released instruct model zero-shot on MBPP's test split, sampling and REBASE at 8-64
    assert models["llama3-8b-instruct"]["checkpoint"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert cfg.budgets(paper, "llama3-8b-instruct", "sampling") == cfg.budgets(paper, "llama3-8b-instruct",
                                                                               "rebase") == [8, 16, 32, 64]
    assert paper["datasets"]["mbpp"]["format"] == "mbpp" and paper["figures"]["table3_mbpp"]["kind"] == "table3"
    models = {slug: m for slug, m in models.items() if "checkpoint" not in m}  # the fine-tuned ones
    # Table 2: learning rates and sequence lengths; Pythia on the GSM8K part of MetaMath
    lr = {slug: m["train"]["lr"] for slug, m in models.items()}
    assert (lr["pythia-410m"], lr["pythia-1.4b"], lr["pythia-2.8b"], lr["pythia-6.9b"], lr["pythia-12b"]) == (
        8e-5, 4e-5, 3e-5, 2e-5, 1e-5)
    assert lr["llemma-7b"] == lr["llemma-34b"] == 8e-6
    assert models["llemma-7b"]["train"]["max_length"] == 1024 and models["llemma-34b"]["train"]["max_length"] == 768
    assert all(m["train"]["epochs"] == 1 and m["train"]["batch_size"] == 128 for m in models.values())
    assert paper["datasets"][models["pythia-410m"]["sft_dataset"]]["types"] == ["GSM_"]
    prm = paper["prm"]
    # Table 2's BF16: bf16 compute over fp32 master weights (what accelerate trains a bf16 dtype as under FSDP)
    assert (prm["train"]["epochs"], prm["train"]["lr"], prm["train"]["mixed_precision"], prm["hub_id"]) == (
        2, 1e-5, "bf16", "EleutherAI/llemma_34b")
    assert paper["datasets"][prm["dataset"]]["hub"]["id"] == "peiyi9979/Math-Shepherd"
    assert cfg.job_resources(paper, "train_policy", "llemma-34b")["gpu"] == 8


def test_whole_paper_dag_plans_offline_and_fast(tmp_path, paper):
    start = time.time()
    jobs = plan(tmp_path)
    seconds = time.time() - start
    assert seconds < 30, f"planning took {seconds:.1f} s"
    ev = paper["evaluate"]
    expected_generate = sum(runs(paper, d, m, s) for d in ev["datasets"] for m in ev["models"] for s in ev["strategies"])
    expected_generate += sum(runs(paper, "gsm8k", m, "sampling") for m in paper["models"] if m.startswith("pythia"))
    expected_generate += sum(runs(paper, "math500", m, "mcts") for m in ("llemma-7b", "llemma-34b"))
    expected_generate += sum(runs(paper, "mbpp", "llama3-8b-instruct", s) for s in ("sampling", "rebase"))  # Table 3
    assert jobs["generate"] == jobs["score"] + jobs["tree_scores"] == expected_generate == 416
    # tree search carries its step scores from the search: no job loads the 34B PRM only to find nothing to score
    tree = sum(runs(paper, d, m, s) for d in ev["datasets"] for m in ev["models"] for s in ev["strategies"]
               if s in cfg.TREE_STRATEGIES) + sum(runs(paper, "math500", m, "mcts") for m in ("llemma-7b", "llemma-34b"))
    tree += runs(paper, "mbpp", "llama3-8b-instruct", "rebase")
    # beam search and DVTS: 3 budgets x 3 seeds x 4 models x 2 data sets each
    assert sum(runs(paper, d, m, s) for d in ev["datasets"] for m in ev["models"] for s in cfg.BEAM_STRATEGIES) == 144
    assert jobs["tree_scores"] == tree == 366 and jobs["score"] == 50
    assert jobs["train_policy"] == 9 and jobs["train_prm"] == 1 and jobs["prepare_data"] == 6
    assert jobs["fetch_base"] == 9  # nine hub bases (the PRM shares Llemma-34B's), downloaded by local jobs
    assert jobs["fetch_model"] == 1  # Table 3's Llama3-8B-Instruct, as released
    assert jobs["paper_figure"] == 11 and jobs["paper_table"] == 4
    assert "train_tokenizer" not in jobs and "label_prm_data" not in jobs
    assert not (tmp_path / "results").exists()


def test_paper_plan_has_no_warning(tmp_path):
    cmd = [sys.executable, "-c", OFFLINE_SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
           "--configfile", str(PAPER_YAML), "-n"]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    result = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp_path, env=env)
    out = (result.stdout + result.stderr).replace(str(tmp_path), "<workdir>")
    assert result.returncode == 0, out[-3000:]
    assert "localrules directive" not in out and "warning" not in out.lower(), out[:3000]


def test_planned_generate_jobs_ask_for_the_gpus_their_models_use(tmp_path, paper):
    """The dry run's own resources for each generate job: the policy's tensor-parallel GPUs and, for a tree
    search, one for the PRM (infscale.search.placement), no more."""
    import re

    from infscale.search.placement import gpus_used, plan_devices

    cmd = [sys.executable, "-c", OFFLINE_SNAKEMAKE, "results/paper/fig4_math500_llemma_strategies.png", "-s",
           str(ROOT / "Snakefile"), "-d", str(tmp_path), "--configfile", str(PAPER_YAML), "-n"]
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=tmp_path, env=env).stdout
    jobs = re.findall(r"rule generate:.*?wildcards: dataset=\w+, model=([\w.-]+), strategy=(\w+).*?resources: .*?gpu=(\d+)",
                      out, flags=re.S)
    assert len(jobs) == 72
    seen = {}
    for model, strategy, gpu in jobs:
        tree = strategy in cfg.TREE_STRATEGIES
        used = gpus_used(plan_devices(int(gpu), tree, cfg.engine_params(paper, model).get("tensor_parallel_size")))
        assert int(gpu) == used, (model, strategy, gpu)
        seen[model, tree] = int(gpu)
    assert seen == {("llemma-7b", False): 1, ("llemma-7b", True): 2, ("llemma-34b", False): 2, ("llemma-34b", True): 3}


@pytest.mark.parametrize("name", sorted(yaml.safe_load(PAPER_YAML.read_text())["figures"]))
def test_each_paper_target_plans_only_its_jobs(tmp_path, paper, name):
    spec = paper["figures"][name]
    ext = "png" if spec["kind"] in ("grid", "compute_optimal") else "csv"
    jobs = plan(tmp_path, f"results/paper/{name}.{ext}")
    combos = [(d, m, s) for d in spec["datasets"] for m in spec["models"] for s in spec["strategies"]]
    assert jobs["metrics"] == len(combos)
    assert jobs["generate"] == jobs.get("score", 0) + jobs.get("tree_scores", 0) == sum(runs(paper, *c) for c in combos)
    assert jobs.get("tree_scores", 0) == sum(runs(paper, *c) for c in combos if c[2] in cfg.TREE_STRATEGIES)
    trained = [m for m in spec["models"] if "checkpoint" not in paper["models"][m]]
    assert jobs.get("train_policy", 0) == len(trained) and jobs["train_prm"] == 1
    assert jobs.get("fetch_model", 0) == len(spec["models"]) - len(trained)  # released policies (Table 3)
    sft = {paper["models"][m]["sft_dataset"] for m in trained}
    assert jobs["prepare_data"] == len(spec["datasets"]) + len(sft) + 1  # + Math-Shepherd for the PRM
    assert jobs.get("paper_figure", 0) + jobs.get("paper_table", 0) == 1
    assert set(jobs) <= {"prepare_data", "fetch_base", "fetch_model", "train_policy", "train_prm", "generate", "score",
                         "tree_scores", "metrics", "paper_figure", "paper_table"}


def test_released_checkpoints_replace_fine_tuning(tmp_path, paper):
    raw = yaml.safe_load(PAPER_YAML.read_text())
    released = copy.deepcopy(raw)
    released["models"]["llemma-7b"] = {"checkpoint": "tkitsers/Llemma-metamath-7b", "params": 6476271616}
    released["models"]["llemma-34b"] = {"checkpoint": "tkitsers/Llemma-metamath-34b", "params": 33214316544}
    released["prm"] = {"name": "llemma-rm", "source": "checkpoint", "checkpoint": "tkitsers/Llemma-reward-model"}
    path = tmp_path / "released.yaml"
    path.write_text(yaml.safe_dump(released))
    jobs = plan(tmp_path, "results/paper/fig4_math500_llemma_strategies.png", config=path)
    assert jobs["fetch_model"] == 2 and jobs["fetch_prm"] == 1
    assert "train_policy" not in jobs and "train_prm" not in jobs
    assert jobs["prepare_data"] == 1  # MATH500 only: no SFT or PRM data
