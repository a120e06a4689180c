"""Multi-GPU training loads a base's weights on rank 0 only: two gloo processes on CPU under the environment that
`accelerate launch` derives from resources/fsdp.yaml, each loading a tiny Llama through the launcher's own loaders,
then wrapped by FSDP as accelerate wraps it (sync_module_states, param_init_fn `to_empty`) and trained a few steps
on different data."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

RANK_SCRIPT = r'''
import functools, json, os, sys
from pathlib import Path

import torch

from infscale.core.models import load_pretrained_for_training
from infscale.training.launch import init_distributed

base, out = sys.argv[1], Path(sys.argv[2])
rank = int(os.environ["RANK"])
torch.set_num_threads(1)
init_distributed()  # what the launcher does before loading: accelerate's process group (gloo on CPU)
import torch.distributed as dist

report = {"world": dist.get_world_size() if dist.is_initialized() else 1}
_, policy = load_pretrained_for_training(base, "AutoModelForCausalLM", "fp32", 0)
_, prm = load_pretrained_for_training(base, "AutoModelForTokenClassification", "bf16", 0, num_labels=1)
for name, model in (("policy", policy), ("prm", prm)):
    report[name] = sorted({t.device.type for t in (*model.parameters(), *model.buffers())})
report["prm_labels"] = prm.config.num_labels
report["prm_dtype"] = str(prm.dtype)

# FSDP1 as accelerate 1.15 wraps it (Accelerator.prepare_model with the plugin that fsdp.yaml configures): on a GPU
# param_init_fn is `to_empty(device=cuda)`; here the device is the CPU. FSDP refuses sync_module_states on CPU
# tensors only because NCCL needs GPU tensors: gloo broadcasts CPU tensors, so that check is lifted here.
import torch.distributed.fsdp._init_utils as init_utils
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
from transformers.models.llama.modeling_llama import LlamaDecoderLayer

init_utils._check_module_states_for_sync_module_states = lambda states: None
assert os.environ["FSDP_SYNC_MODULE_STATES"] == "true" and os.environ["FSDP_USE_ORIG_PARAMS"] == "true"
model = FSDP(policy, auto_wrap_policy=functools.partial(transformer_auto_wrap_policy,
                                                        transformer_layer_cls={LlamaDecoderLayer}),
             sync_module_states=True, use_orig_params=True, device_id=torch.device("cpu"),
             param_init_fn=lambda module: module.to_empty(device=torch.device("cpu"), recurse=False))


def full_state():
    with FSDP.summon_full_params(model):
        return {k.replace("_fsdp_wrapped_module.", ""): v.detach().clone()
                for k, v in (*model.module.named_parameters(), *model.module.named_buffers())}


torch.save(full_state(), out / f"wrapped{rank}.pt")
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
generator = torch.Generator().manual_seed(100 + rank)  # each rank its own batches
for _ in range(3):
    ids = torch.randint(0, policy.config.vocab_size, (2, 12), generator=generator)
    model(input_ids=ids, labels=ids).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
torch.save(full_state(), out / f"trained{rank}.pt")
(out / f"rank{rank}.json").write_text(json.dumps(report))
dist.destroy_process_group()
'''


def accelerate_environment(world: int, port: int) -> dict:
    """What `accelerate launch --config_file resources/fsdp.yaml` puts in each process's environment."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    from infscale.training.launch import ACCELERATE_CONFIG

    args = launch_command_parser().parse_args(
        ["--config_file", str(ACCELERATE_CONFIG), "--num_processes", str(world), "--num_machines", "1",
         "--main_process_port", str(port), "train.py"])
    args, _, _ = _validate_launch_command(args)
    return prepare_multi_gpu_env(args)


@pytest.fixture
def tiny_llama_base(tmp_path, tokenizer_dir):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from infscale.training.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    return tmp_path / "base", model.state_dict()


def test_only_rank0_reads_the_weights_and_fsdp_gives_them_to_the_others(tmp_path, tiny_llama_base):
    import torch

    from infscale.training.launch import free_port

    base, saved = tiny_llama_base
    port = free_port()
    env = {**os.environ, **accelerate_environment(2, port), "PYTHONPATH": str(ROOT / "src"), "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "WORLD_SIZE": "2",
           "LOCAL_WORLD_SIZE": "2"}
    assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    procs = [subprocess.Popen([sys.executable, str(script), str(base), str(tmp_path)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for r in range(2)]
    logs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(log[-3000:] for log in logs)
    rank0, rank1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert rank0["world"] == rank1["world"] == 2  # the process group existed before loading
    # rank 0 read the checkpoint; rank 1 holds no storage at all before wrapping (the policy and the PRM alike)
    assert rank0["policy"] == rank0["prm"] == ["cpu"]
    assert rank1["policy"] == rank1["prm"] == ["meta"]
    assert rank1["prm_labels"] == 1 and rank1["prm_dtype"] == rank0["prm_dtype"] == "torch.bfloat16"
    # once wrapped, both ranks hold the checkpoint's weights (rank 1's came from rank 0), buffers included
    for r in range(2):
        wrapped = torch.load(tmp_path / f"wrapped{r}.pt")
        assert set(saved) <= set(wrapped)
        for key, value in saved.items():
            assert torch.equal(wrapped[key], value), (r, key)
        assert torch.equal(wrapped["model.rotary_emb.inv_freq"], torch.load(tmp_path / "wrapped0.pt")[
            "model.rotary_emb.inv_freq"])
    # after training on different batches, the same weights on both ranks, and not the checkpoint's
    trained = [torch.load(tmp_path / f"trained{r}.pt") for r in range(2)]
    assert trained[0].keys() == trained[1].keys()
    assert all(torch.equal(trained[0][k], trained[1][k]) for k in trained[0])
    assert not torch.equal(trained[0]["model.layers.0.mlp.up_proj.weight"], saved["model.layers.0.mlp.up_proj.weight"])
