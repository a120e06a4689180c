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


# --- memory plan: precision, offload, threads, the save, the step tag on meta ranks ------------------------------------

def _paper():
    import yaml

    from infscale.core.validation import validate_config

    return validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))


def test_accelerate_upcasts_fsdp_weights_under_mixed_precision():
    """The reading the memory plan rests on (accelerate 1.15, pinned): with mixed precision on, prepare_model
    upcasts every trainable FSDP flat parameter to fp32, so `dtype: bf16` on several GPUs keeps fp32 master
    weights (and Adam in fp32), it does not train in pure bf16."""
    import inspect

    from accelerate import Accelerator

    source = inspect.getsource(Accelerator.prepare_model)
    branch = source[source.index('if self.mixed_precision != "no":'):]
    assert "param.data = param.data.to(torch.float32)" in branch.split("report the warnings")[0]


def test_policy_and_prm_memory_plans_agree():
    from infscale.training import memory

    paper = _paper()
    policy, prm = paper["models"]["llemma-34b"], paper["prm"]
    p = memory.plan(policy["params"], policy["train"], 8, vocab=32_016)  # Llemma's vocabulary
    r = memory.plan(prm["params"], prm["train"], 8, vocab=1)
    assert p.master_bytes == r.master_bytes == 4 and p.compute_bytes == r.compute_bytes == 2
    assert abs(p.per_gpu - r.per_gpu) < 1.5 * memory.GIB  # the policy's logits only
    assert p.states == pytest.approx(16 * policy["params"] / 8)  # ~62 GiB: fp32 weights, grads, Adam
    gpu80 = 79.6 * memory.GIB
    assert p.fits(gpu80) and r.fits(gpu80) and not p.fits(40 * memory.GIB)
    # Table 2's `dtype: bf16` PRM on 8 GPUs is the same plan (upcast); in one process it is pure bf16
    bf16 = {k: v for k, v in prm["train"].items() if k != "mixed_precision"} | {"dtype": "bf16"}
    assert memory.plan(prm["params"], bf16, 8, vocab=1).per_gpu == r.per_gpu
    assert memory.plan(prm["params"], bf16, 1, vocab=1).master_bytes == 2
    assert p.host(offload=True) <= cfg_mem_mb(paper, "train_policy") * 1e6  # rank 0's copy + offloaded shards


def cfg_mem_mb(paper, rule):
    from infscale.core import config as cfg

    return cfg.job_resources(paper, rule, "llemma-34b")["mem_mb"]


def test_offload_auto_decides_by_memory_and_an_earlier_oom():
    from infscale.training import memory

    train = {**BIG, "offload": "auto"}
    plan = memory.plan(33_214_316_544, train, 8)
    gpu80, gpu40 = 79.6 * memory.GIB, 40 * memory.GIB
    assert not memory.use_offload(train, plan, gpu80)
    assert memory.use_offload(train, plan, gpu40)
    assert memory.use_offload(train, plan, gpu80, oom_before=True)
    assert memory.use_offload(train, plan, None)  # GPU memory unknown: the safe side
    assert not memory.use_offload(train, memory.plan(33_214_316_544, train, 1), gpu40)  # one process: no FSDP
    assert memory.use_offload({**BIG, "offload": True}, plan, gpu80)  # as given
    assert not memory.use_offload({**BIG, "offload": False}, plan, gpu40)


@pytest.fixture
def tiny_base(tmp_path):
    """A base checkpoint's config only: the launcher sizes the model from it on the meta device."""
    from transformers import LlamaConfig

    LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=2).save_pretrained(tmp_path / "base")
    return tmp_path / "base"


def test_launcher_resolves_offload_from_measured_gpu_memory(tmp_path, tiny_base, monkeypatch):
    from infscale.training.memory import oom_marker

    seen = []

    def fake_run(cmd, check, stdout, stderr, env):
        assert env["PYTORCH_CUDA_ALLOC_CONF"] == "expandable_segments:True"  # every rank's allocator
        seen.append((cmd, json.loads(Path(cmd[-1]).read_text())["train"]["offload"]))

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    spec = {"kind": "policy", "data": "d", "base": str(tiny_base), "train": {**BIG, "offload": "auto"}, "seed": 0,
            "out": str(tmp_path / "policy"), "threads": 64}
    monkeypatch.setenv("INFSCALE_GPU_MEMORY_GIB", "80")
    launch.train(spec, gpus=8)
    monkeypatch.setenv("INFSCALE_GPU_MEMORY_GIB", "0.001")  # a GPU too small for the plan
    launch.train(spec, gpus=8)
    monkeypatch.setenv("INFSCALE_GPU_MEMORY_GIB", "80")
    oom_marker(spec["out"]).touch()  # the previous attempt ran out of GPU memory
    launch.train(spec, gpus=8)
    assert [("--fsdp_offload_params" in cmd, offload) for cmd, offload in seen] == [
        (False, False), (True, True), (True, True)]
    assert not oom_marker(spec["out"]).exists()  # removed once the job succeeded
    assert all(cmd[cmd.index("--num_cpu_threads_per_process") + 1] == "8" for cmd, _ in seen)  # 64 CPUs / 8 ranks


def test_a_rank_out_of_gpu_memory_leaves_the_marker(tmp_path, monkeypatch):
    import torch

    from infscale.training.memory import oom_marker

    def oom(spec):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(launch, "_run_spec", oom)
    with pytest.raises(torch.OutOfMemoryError):
        launch.run_spec({"out": str(tmp_path / "prm")})
    assert oom_marker(tmp_path / "prm").exists()


def test_each_rank_takes_its_share_of_the_cpus(tmp_path, tokenizer_dir, monkeypatch):
    from infscale.training import sft

    seen = {}
    monkeypatch.setattr(sft, "train_policy", lambda *a: seen.setdefault("threads", a[-1]))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"question": "q", "solution": "s"}) + "\n")
    spec = {"kind": "policy", "data": str(data), "tokenizer": str(tokenizer_dir), "base": None, "seed": 0,
            "arch": {"hidden_size": 16, "num_layers": 1, "num_heads": 2}, "train": BIG, "out": str(tmp_path / "o"),
            "threads": 64}
    launch.run_spec(spec)
    assert seen["threads"] == 8


def test_rank0_casts_the_gathered_state_tensor_by_tensor():
    """The gathered fp32 state and its bf16 copy never both exist whole: each fp32 tensor is freed once cast."""
    import weakref

    import torch

    from infscale.training.sft import cast_state_dict

    alive_at_each_cast = []

    class Spy(dict):
        def __setitem__(self, key, value):
            alive_at_each_cast.append(sum(r() is not None for r in refs))
            super().__setitem__(key, value)

    state = Spy()
    for i in range(4):
        dict.__setitem__(state, f"w{i}", torch.ones(8))
    dict.__setitem__(state, "steps", torch.tensor([3]))  # not floating: kept as is
    refs = [weakref.ref(t) for t in state.values() if t.is_floating_point()]
    assert cast_state_dict(state, torch.bfloat16) is state
    assert alive_at_each_cast == [4, 3, 2, 1]  # the one being cast and those still to come
    assert {str(v.dtype) for k, v in state.items() if k != "steps"} == {"torch.bfloat16"}
    assert state["steps"].dtype == torch.long


def test_step_tag_is_added_on_ranks_that_hold_meta_tensors():
    """Under cpu_ram_efficient_loading ranks 1..7 hold the model on the meta device; a tokenizer that splits the
    tag needs a resize there too, and mean-initialising the new row reads values that meta tensors lack."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from infscale.core.models import add_step_tag
    from infscale.core.stepformat import STEP_TAG

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(["Step 1: 2 + 3 = 5"] * 20, trainers.BpeTrainer(
        vocab_size=280, special_tokens=["</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>")
    assert len(tokenizer.encode(STEP_TAG, add_special_tokens=False)) > 1  # split, as Llama's and Pythia's do
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2)
    with torch.device("meta"):
        meta = LlamaForCausalLM(config)
    with pytest.raises(RuntimeError, match="meta"):
        meta.resize_token_embeddings(len(tokenizer) + 1)  # what add_step_tag did before (mean_resizing)
    tag = add_step_tag(tokenizer, meta)
    assert meta.get_input_embeddings().weight.shape[0] == len(tokenizer) and tag == len(tokenizer) - 1
    real = LlamaForCausalLM(config)
    add_step_tag(tokenizer, real)
    assert real.get_input_embeddings().weight.shape[0] == len(tokenizer)
