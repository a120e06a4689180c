"""The memory plan of a fine-tuning job rests on measured constants (benchmarks/activation_memory.py), a GPU budget
CUDA can actually allocate, a pinned optimizer and allocator setting; every job of config/paper.yaml fits it."""
import json
from pathlib import Path

import pytest
import yaml

from infscale.training import memory

ROOT = Path(__file__).resolve().parents[1]


def test_constants_are_the_measured_ones():
    measured = json.loads((ROOT / "benchmarks" / "results" / "activation_memory.json").read_text())
    assert measured["meta"]["command"] == "python benchmarks/activation_memory.py"
    for family, by_dtype in measured["bytes"].items():
        for dtype, figures in by_dtype.items():
            assert memory.ACTIVATION_BYTES[family][dtype] == (figures["plain"], figures["checkpointing"])
            assert figures["logits"] == memory.LOGIT_SAVED_BYTES
    assert set(memory.ACTIVATION_BYTES) == set(measured["bytes"])


def _saved_bytes(model, ids) -> int:
    """Distinct non-parameter storages saved for backward by one forward pass with the loss: written here
    independently of the benchmark."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    sizes = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params:
            sizes[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids).loss.backward()
    return sum(sizes.values())


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_plan_predicts_what_a_llama_of_another_shape_saves(dtype):
    """A Llama of another width, depth, head count and sequence length than the benchmark's: the plan's
    activations and saved logits within 10% of what its forward pass saves."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, vocab, batch, length = 192, 4, 300, 3, 40
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=hidden, intermediate_size=516,
                                         num_hidden_layers=layers, num_attention_heads=6, tie_word_embeddings=False))
    model = model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]).train()
    ids = torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(0))
    saved = _saved_bytes(model, ids)
    train = {"batch_size": batch, "micro_batch_size": batch, "max_length": length, "dtype": dtype}
    plan = memory.plan(10**6, train, 1, vocab=vocab, hidden=hidden, layers=layers, arch="llama")
    predicted = plan.activations + batch * length * vocab * memory.LOGIT_SAVED_BYTES
    assert predicted == pytest.approx(saved, rel=0.1)


def test_gpu_budget_is_what_cuda_can_allocate_less_nccl():
    h100 = 81_559 * 2**20  # nvidia-smi's total for an H100 80GB, what the launcher reads
    assert memory.allocatable(h100) / memory.GIB == pytest.approx(79.65 - 3.1, abs=0.01)
    plan = memory.plan(10**9, {"batch_size": 8, "max_length": 512}, 8)
    assert plan.fits(plan.per_gpu + 3.1 * memory.GIB) and not plan.fits(plan.per_gpu + 3.0 * memory.GIB)


def test_family_of_the_paper_models():
    assert memory.family("EleutherAI/pythia-12b") == memory.family("gpt_neox") == "gpt_neox"
    assert memory.family("EleutherAI/llemma_34b") == memory.family("llama", 22016 / 8192) == "llama"
    assert memory.family("meta-llama/Meta-Llama-3-8B-Instruct") == memory.family("llama", 14336 / 4096) == "llama3"
    assert memory.family("mistralai/Mistral-7B-v0.1") == "mistral"
    assert memory.family("some/other") == memory.UNKNOWN_FAMILY


def test_every_paper_training_job_fits_an_80gb_gpu():
    """Jobs without `offload: auto` (nothing to fall back to) keep 5% of the budget for what the plan leaves out;
    the 34B jobs fit without offloading and offload on a retry if they do run out."""
    from infscale.core.validation import validate_config
    from infscale.estimate import Hardware, training_jobs

    paper = validate_config(yaml.safe_load((ROOT / "config" / "paper.yaml").read_text()))
    budget = memory.allocatable(Hardware().gpu_memory_gib * memory.GIB)
    for job in training_jobs(paper):
        train = paper["prm"]["train"] if job.rule == "train_prm" else paper["models"][job.name]["train"]
        assert not job.offload, job.name
        margin = 1.0 if train.get("offload") == "auto" else 0.95
        assert job.plan.per_gpu <= margin * budget, job.name


def test_the_trainer_builds_the_fused_adamw(tmp_path, tokenizer_dir, monkeypatch):
    """The plan assumes torch's fused AdamW (no foreach temporaries): a spy on AdamW sees fused=True."""
    import torch

    from infscale.core.models import build_causal_lm
    from infscale.training.sft import train_policy
    from infscale.training.tokenizer import load_tokenizer

    seen = []
    original = torch.optim.AdamW.__init__

    def spy(self, params, *args, **kwargs):
        seen.append(kwargs.get("fused"))
        original(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "__init__", spy)
    tok = load_tokenizer(tokenizer_dir)
    model = build_causal_lm({"hidden_size": 16, "num_layers": 1, "num_heads": 2}, tok, 0)
    rows = [{"question": "Compute 1 + 2.", "solution": "Step 1: 1 + 2 = 3 ки\nThe answer is: 3 ки"}] * 2
    train_policy(rows, tok, model, {"steps": 1, "batch_size": 2, "lr": 1e-3}, tmp_path / "p", 0)
    assert seen == [True]


def test_training_processes_expand_allocator_segments(monkeypatch, tmp_path):
    import os

    from infscale.training import launch

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    seen = {}
    monkeypatch.setattr(launch, "_run_spec", lambda spec: seen.setdefault("conf", os.environ.get(
        "PYTORCH_CUDA_ALLOC_CONF")))
    launch.run_spec({"out": str(tmp_path / "o")})
    assert seen["conf"] == "expandable_segments:True"
    assert launch.training_env({"PYTORCH_CUDA_ALLOC_CONF": "x"})["PYTORCH_CUDA_ALLOC_CONF"] == "x"  # the user's own
