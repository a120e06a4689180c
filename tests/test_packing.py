"""`train.packing`: a micro-batch's examples concatenated into one row with attention kept within each example gives
the same forward pass as separate rows (GPT-NeoX, Llama, a Llama PRM head) and the same training as padding."""
import pytest
import torch

from infscale.training.sft import PackCollator


def _models():
    from transformers import (
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForTokenClassification,
    )

    torch.manual_seed(0)
    llama = dict(vocab_size=90, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    return {"gpt_neox": GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=90, hidden_size=32, intermediate_size=64,
                                                         num_hidden_layers=2, num_attention_heads=4)),
            "llama": LlamaForCausalLM(LlamaConfig(**llama)),
            "llama_prm": LlamaForTokenClassification(LlamaConfig(**llama, num_labels=1))}


@pytest.mark.parametrize("name", ["gpt_neox", "llama", "llama_prm"])
def test_packed_forward_equals_separate_forwards(name):
    model = _models()[name].eval()
    model.config.use_cache = False  # as run_training sets it under packing
    lengths = [9, 4, 13]
    examples = [{"input_ids": torch.randint(0, 90, (n,), generator=torch.Generator().manual_seed(n)).tolist(),
                 "labels": [-100] * n} for n in lengths]
    batch = PackCollator()(examples)
    assert batch["position_ids"].tolist() == [list(range(9)) + list(range(4)) + list(range(13))]
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
        start = 0
        for e in examples:
            alone = model(input_ids=torch.tensor([e["input_ids"]])).logits[0]
            assert torch.allclose(packed[start : start + len(alone)], alone, atol=1e-5), name
            start += len(alone)


def test_labels_never_cross_a_boundary():
    batch = PackCollator(label_pad=-100.0)([{"input_ids": [1, 2, 3], "labels": [0.5, -100.0, 1.0]},
                                            {"input_ids": [4, 5], "labels": [1.0, 0.0]}])
    assert batch["labels"].tolist() == [[-100.0, -100.0, 1.0, -100.0, 0.0]]
    assert batch["labels"].dtype == torch.float


def test_packing_trains_as_padding_does(tmp_path, tokenizer_dir, toy_rows):
    from infscale.core.models import build_causal_lm
    from infscale.training.sft import train_policy
    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    rows = toy_rows["train"][:12]
    out = {}
    for packing in (False, True):
        model = build_causal_lm({"hidden_size": 32, "num_layers": 2, "num_heads": 2}, tok, 0)
        train = {"steps": 3, "batch_size": 4, "micro_batch_size": 2, "lr": 1e-2, "packing": packing}
        summary = train_policy(rows, tok, model, train, tmp_path / str(packing), 0)
        out[packing] = (summary["train_loss"], model.state_dict())
    assert out[True][0] == pytest.approx(out[False][0], rel=1e-4)
    for key, value in out[False][1].items():
        assert torch.allclose(out[True][1][key], value, atol=1e-4), key
