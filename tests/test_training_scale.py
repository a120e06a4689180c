"""Training at 7B-34B: what the multi-GPU jobs ask accelerate/FSDP and the Trainer for, checked on CPU (spies and the
toy), and a training job killed with SIGKILL that resumes from its last checkpoint when run again."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infscale.training import launch
from infscale.training.sft import checkpoint_dir, training_arguments

ROOT = Path(__file__).resolve().parents[1]
BIG = {"epochs": 1, "batch_size": 128, "micro_batch_size": 1, "lr": 8e-6, "dtype": "fp32",
       "mixed_precision": "bf16", "offload": True, "gradient_checkpointing": True}


# --- 3. memory of FSDP training ------------------------------------------------------------------------------------

def test_gradients_sync_on_every_micro_step(tmp_path):
    """Under FSDP, no_sync on accumulation steps keeps full unsharded gradients on each rank."""
    args = training_arguments(str(tmp_path), BIG, 0, 1)
    assert args.gradient_accumulation_steps == 128  # one process here; 16 on 8 GPUs
    assert args.accelerator_config.gradient_accumulation_kwargs == {"sync_each_batch": True}


def test_mixed_precision_offload_and_checkpointing_reach_trainer_and_accelerate(tmp_path):
    args = training_arguments(str(tmp_path), BIG, 0, 1)
    assert args.bf16 and args.gradient_checkpointing and args.gradient_checkpointing_kwargs == {"use_reentrant": False}
    assert not training_arguments(str(tmp_path), {**BIG, "mixed_precision": "no"}, 0, 1).bf16
    cmd = launch.accelerate_command(tmp_path / "spec.json", 8, train=BIG, port=31234)
    assert cmd[cmd.index("--fsdp_offload_params") + 1] == "true"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert cmd.index("--module") > cmd.index("--fsdp_offload_params")  # launcher options before the module
    plain = launch.accelerate_command(tmp_path / "spec.json", 8, train={**BIG, "offload": False, "mixed_precision": "no"})
    assert "--fsdp_offload_params" not in plain and "--mixed_precision" not in plain


def test_process_group_exists_before_the_model_loads(tmp_path, monkeypatch, tokenizer_dir):
    """fsdp_cpu_ram_efficient_loading only works if the process group exists when from_pretrained runs."""
    import accelerate

    from infscale.core import models

    events = []
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setattr(accelerate, "PartialState", lambda: events.append("process group"))

    def load(*a, **k):
        events.append("model loaded")
        raise RuntimeError("stop here")

    monkeypatch.setattr(models, "load_pretrained_for_training", load)
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    spec = {"kind": "policy", "data": str(data), "base": "org/model", "train": BIG, "seed": 0,
            "out": str(tmp_path / "out"), "threads": 1}
    with pytest.raises(RuntimeError, match="stop here"):
        launch.run_spec(spec)
    assert events == ["process group", "model loaded"]


def test_prm_is_saved_in_bf16(tmp_path, tokenizer_dir, tiny_policy_dir):
    from safetensors import safe_open

    from infscale.training.prm_training import load_prm_for_training, train_prm
    from infscale.training.tokenizer import load_tokenizer

    rows = [{"input": "Compute 2 + 3.\nStep 1: 2 + 3 = 5 ки\nThe answer is: 5 ки",
             "label": "Compute 2 + 3.\nStep 1: 2 + 3 = 5 +\nThe answer is: 5 +"}] * 4
    tok = load_tokenizer(tokenizer_dir)
    model = load_prm_for_training(str(tiny_policy_dir), None, tok, seed=0)
    train_prm(rows, tok, model, {"steps": 1, "batch_size": 4, "lr": 1e-3, "dtype": "fp32", "save_dtype": "bf16"},
              tmp_path / "prm", seed=0)
    with safe_open(str(tmp_path / "prm" / "model.safetensors"), "pt") as f:
        dtypes = {str(f.get_tensor(k).dtype) for k in f.keys()}
    assert dtypes == {"torch.bfloat16"}
    assert json.loads((tmp_path / "prm" / "config.json").read_text())["dtype"] == "bfloat16"


# --- 7. SLURM: a free rendezvous port per job; resume after a kill --------------------------------------------------

def test_each_job_gets_its_own_free_rendezvous_port(tmp_path, monkeypatch):
    import socket

    ports = set()
    for job_id in ("101", "102", "103"):
        monkeypatch.setenv("SLURM_JOB_ID", job_id)
        cmd = launch.accelerate_command(tmp_path / "spec.json", 8)
        ports.add(int(cmd[cmd.index("--main_process_port") + 1]))
    assert len(ports) == 3 and 29500 not in ports
    with socket.socket() as s:  # a port in use is never handed out
        s.bind(("", 0))
        s.listen()
        taken = s.getsockname()[1]
        import random

        seed = next(i for i in range(10**6) if random.Random(i).randrange(20000, 60000) == taken) \
            if 20000 <= taken < 60000 else None
        if seed is not None:
            assert launch.free_port(seed) != taken


TRAIN_SCRIPT = """
import json, sys
from infscale.training.launch import run_spec
print(json.dumps(run_spec(json.loads(open(sys.argv[1]).read()))))
"""


def test_training_killed_resumes_from_its_last_checkpoint(tmp_path, tokenizer_dir, toy_rows):
    from infscale.core.io import write_jsonl

    write_jsonl(tmp_path / "train.jsonl", toy_rows["train"][:64])
    out = tmp_path / "policy"
    spec = {"kind": "policy", "data": str(tmp_path / "train.jsonl"), "tokenizer": str(tokenizer_dir),
            "arch": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128},
            "base": None, "train": {"steps": 300, "batch_size": 2, "lr": 1e-3, "save_steps": 10}, "seed": 0,
            "out": str(out), "threads": 1}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    (tmp_path / "train.py").write_text(TRAIN_SCRIPT)
    cmd = [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "spec.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    checkpoints = checkpoint_dir(out)
    deadline = time.time() + 120
    while not list(checkpoints.glob("checkpoint-*/trainer_state.json")) and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stdout.read().decode()[-2000:]
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)  # a node failure or the SLURM time limit
    proc.wait()
    assert not out.exists()  # no model from a killed job
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    step = int(summary["resumed_from"].split("-")[1])
    assert 10 <= step < 300 and step % 10 == 0
    assert summary["steps"] == 300
    assert (out / "config.json").exists() and not checkpoints.exists()  # checkpoints go once the model is saved
