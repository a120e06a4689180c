import pytest
from workflow_runs import local_ci_run

from infscale.core import toytask
from infscale.core.data import training_texts
from infscale.core.models import build_causal_lm
from infscale.core.stepformat import STEP_TAG
from infscale.training.tokenizer import train_tokenizer


@pytest.fixture(scope="session")
def toy_rows():
    return toytask.make_splits(400, 8, 16, seed=0)


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, toy_rows):
    out = tmp_path_factory.mktemp("tokenizer")
    train_tokenizer(training_texts(toy_rows["train"]), out, vocab_size=300)
    return out


@pytest.fixture(scope="session")
def tiny_policy_dir(tmp_path_factory, tokenizer_dir):
    """An untrained tiny GPT-NeoX with the task tokenizer: enough for engine and PRM contracts."""
    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    out = tmp_path_factory.mktemp("policy")
    model = build_causal_lm({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}, tok, 0)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tagging_policy_dir(tiny_policy_dir, tmp_path_factory):
    """The untrained tiny policy with its step-tag logit raised to a constant 4 (p about 0.16 a token), so
    steps end with the tag and trees grow past depth 1."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_policy_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_policy_dir)
    tag = tok.convert_tokens_to_ids(STEP_TAG)
    with torch.no_grad():
        norm, head = model.gpt_neox.final_layer_norm, model.get_output_embeddings()
        norm.weight[0], norm.bias[0] = 0.0, 1.0  # hidden unit 0 is the constant 1
        head.weight[:, 0] = 0.0
        head.weight[tag] = 0.0
        head.weight[tag, 0] = 4.0
    out = tmp_path_factory.mktemp("tagging_policy")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ci_run(tmp_path_factory):
    """config/ci.yaml run end to end with `snakemake --cores 2`, once a session: the workflow tests check it, the
    cluster test compares its SLURM run with it. Tests may add files beside it, never change its results/."""
    return local_ci_run(tmp_path_factory.mktemp("ci-run"))


@pytest.fixture(scope="session")
def engine_policy_dir(tokenizer_dir, tmp_path_factory):
    """The engine-contract model: tiny GPT-NeoX with head size 32 (the smallest vLLM's CPU attention runs) and
    context 128; its output head is scaled up so that greedy choices are clear-cut (engines must agree on them)
    and the step-tag logit raised so that sampled steps end with the tag."""
    import torch

    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    model = build_causal_lm({"hidden_size": 64, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}, tok, 0)
    with torch.no_grad():
        norm, head = model.gpt_neox.final_layer_norm, model.get_output_embeddings()
        norm.weight[0], norm.bias[0] = 0.0, 1.0  # hidden unit 0 is the constant 1
        head.weight.mul_(15.0)
        head.weight[:, 0] = 0.0
        head.weight[tok.convert_tokens_to_ids(STEP_TAG), 0] = 5.0  # about half of 12-token steps end with it
    out = tmp_path_factory.mktemp("engine_policy")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
