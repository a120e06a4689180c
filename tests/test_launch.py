"""Training launch: in process on one device, through `accelerate launch` (FSDP) on several GPUs. The multi-GPU
path cannot run here: the command it builds and the spec it hands over are what is tested."""
import json
import sys
from pathlib import Path

import pytest
import yaml

from infscale.training import launch
from infscale.training.sft import batch_layout

ROOT = Path(__file__).resolve().parents[1]


def test_accelerate_command_launches_this_module_on_n_gpus(tmp_path):
    cmd = launch.accelerate_command(tmp_path / "spec.json", 8)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "8" and cmd[cmd.index("--num_machines") + 1] == "1"
    assert cmd[cmd.index("--config_file") + 1] == str(ROOT / "src" / "infscale" / "resources" / "fsdp.yaml")
    assert cmd[-2:] == ["infscale.training.launch", str(tmp_path / "spec.json")] and cmd[-3] == "--module"
    with pytest.raises(ValueError, match="several GPUs"):
        launch.accelerate_command(tmp_path / "spec.json", 1)


def test_fsdp_config_shards_and_saves_full_weights():
    c = yaml.safe_load((ROOT / "src" / "infscale" / "resources" / "fsdp.yaml").read_text())
    assert c["distributed_type"] == "FSDP" and c["num_machines"] == 1
    assert c["fsdp_config"]["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"  # checkpoints; the model is gathered in full
    assert c["fsdp_config"]["fsdp_sharding_strategy"] == "FULL_SHARD"


def test_global_batch_is_split_over_processes_and_accumulation():
    assert batch_layout({"batch_size": 128, "micro_batch_size": 4}, world_size=8) == (4, 4)
    assert batch_layout({"batch_size": 128, "micro_batch_size": 16}, world_size=1) == (16, 8)
    assert batch_layout({"batch_size": 32}) == (32, 1)  # the toy configs: as before
    with pytest.raises(ValueError, match="multiple of micro_batch_size 16 x 3"):
        batch_layout({"batch_size": 128, "micro_batch_size": 16}, world_size=3)


def _spec(tmp_path, tokenizer_dir, data):
    return {"kind": "policy", "data": str(data), "tokenizer": str(tokenizer_dir), "arch": {
        "hidden_size": 16, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128},
        "base": None, "train": {"steps": 2, "batch_size": 4, "lr": 1e-3, "dtype": "fp32"}, "seed": 0,
        "out": str(tmp_path / "policy"), "threads": 1}


def test_several_gpus_go_through_accelerate_with_the_spec(tmp_path, tokenizer_dir, monkeypatch):
    seen = {}

    def fake_run(cmd, check, stdout, stderr, env):
        seen["cmd"] = cmd
        seen["spec"] = json.loads(Path(cmd[-1]).read_text())
        (tmp_path / "policy").mkdir()
        (tmp_path / "policy" / "training_summary.json").write_text('{"steps": 2}')

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    spec = _spec(tmp_path, tokenizer_dir, tmp_path / "train.jsonl")
    assert launch.train(spec, gpus=4) == {"steps": 2}
    assert seen["spec"] == spec and seen["cmd"][seen["cmd"].index("--num_processes") + 1] == "4"
    assert not Path(seen["cmd"][-1]).exists()  # the spec file is cleaned up


def test_one_gpu_or_cpu_trains_in_process(tmp_path, tokenizer_dir, toy_rows, monkeypatch):
    from infscale.core.io import write_jsonl

    monkeypatch.setattr(launch.subprocess, "run", lambda *a, **k: pytest.fail("no accelerate for one device"))
    write_jsonl(tmp_path / "train.jsonl", toy_rows["train"][:16])
    summary = launch.train(_spec(tmp_path, tokenizer_dir, tmp_path / "train.jsonl"), gpus=0)
    assert summary["steps"] == 2 and (tmp_path / "policy" / "config.json").exists()


def test_unknown_spec_key_is_refused(tmp_path, tokenizer_dir):
    with pytest.raises(ValueError, match="unknown training spec key"):
        launch.train({**_spec(tmp_path, tokenizer_dir, "x"), "lr": 1}, gpus=0)
