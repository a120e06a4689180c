import pytest

from infscale import toytask
from infscale.data import training_texts
from infscale.models import build_causal_lm
from infscale.tokenizer import train_tokenizer


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
    from infscale.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    out = tmp_path_factory.mktemp("policy")
    model = build_causal_lm({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}, tok, 0)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
