"""Every text a model reads starts with the tokenizer's own leading special tokens: the BOS that Llama-2/Llemma,
Mistral and Llama-3 tokenizers add (the released tkitsers checkpoints were trained and score with it), nothing for
GPT-NeoX/Pythia and the task tokenizer. Checked with tiny tokenizers built here, configured to add a BOS (or to
append an EOS, which is not taken), through fine-tuning rows, both engines and the PRM."""
import json

import pytest
import torch
from vllm_support import install_fake_vllm

from infscale.core.models import leading_special_ids

BOS, EOS = "<s>", "</s>"


def _tokenizer(template: str):
    """A byte-level BPE whose post-processor follows `template` (e.g. Llama's `<s> $A`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    texts = ["Compute 2 + 3.\nStep 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"] * 50
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=[BOS, EOS],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=[
        (BOS, tok.token_to_id(BOS)), (EOS, tok.token_to_id(EOS))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS)
    fast.add_tokens(["ки"])
    return fast


@pytest.fixture(scope="module")
def bos_model_dir(tmp_path_factory):
    """A tiny causal LM (a released policy's stand-in) with a tokenizer that adds BOS, as Llemma's does."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    tok = _tokenizer(f"{BOS} $A")
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
                                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id))
    out = tmp_path_factory.mktemp("bos_model")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_leading_special_ids_follow_the_tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    bos = _tokenizer(f"{BOS} $A")
    assert leading_special_ids(bos) == [bos.bos_token_id]
    assert leading_special_ids(_tokenizer(f"$A {EOS}")) == []  # an appended EOS is not a prefix
    assert leading_special_ids(AutoTokenizer.from_pretrained(tokenizer_dir)) == []  # the toy: unchanged


def test_fine_tuning_rows_start_with_bos():
    from infscale.training.prm_training import encode_prm_example
    from infscale.training.sft import encode_sft_example

    tok = _tokenizer(f"{BOS} $A")
    row = encode_sft_example(tok, "Compute 2 + 3.", "Step 1: 2 + 3 = 5 ки", 64)
    assert row["input_ids"][0] == tok.bos_token_id and row["labels"][0] == -100
    assert row["input_ids"][1:].count(tok.bos_token_id) == 0
    text = "Compute 2 + 3.\nStep 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"
    prm_row = encode_prm_example(tok, text, [1.0, 0.0], 64)
    assert prm_row["input_ids"][0] == tok.bos_token_id
    tags = [i for i, y in enumerate(prm_row["labels"]) if y != -100.0]
    assert [tok.decode([prm_row["input_ids"][i]]).strip() for i in tags] == ["ки", "ки"]


@pytest.mark.parametrize("decoder", ["cached", "generate"])
def test_transformers_engine_prompts_start_with_bos(bos_model_dir, decoder):
    from infscale.search.engine_base import SamplingParams
    from infscale.search.engines import TransformersEngine

    engine = TransformersEngine(str(bos_model_dir), batch_size=4, decoder=decoder)
    seen = []
    if decoder == "generate":
        generate = engine.model.generate

        def spy(input_ids, attention_mask, **kwargs):
            seen.append([row[mask.bool()].tolist() for row, mask in zip(input_ids, attention_mask)])
            return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

        engine.model.generate = spy
    else:
        generate = engine.decoder.generate

        def spy(prompt_ids, *args):
            seen.append([list(p) for p in prompt_ids])
            return generate(prompt_ids, *args)

        engine.decoder.generate = spy
    prompt = "Compute 2 + 3.\n"
    (gen,) = engine.generate([prompt], SamplingParams(n=1, temperature=0.0, max_new_tokens=3))
    plain = engine.tokenizer.encode(prompt, add_special_tokens=False)
    assert seen[0][0] == [engine.tokenizer.bos_token_id] + plain and gen.prompt_tokens == len(plain) + 1


def test_prompts_encoded_together_are_encoded_as_alone():
    """Both engines encode a call's prompts in one tokenizer call: each as the tokenizer reads it alone, BOS first
    once (also where the prompt's text writes it, as Llama-3's chat template does)."""
    from infscale.search.engine_base import encode_prompts

    tok = _tokenizer(f"{BOS} $A")
    bos = tok.bos_token_id
    prompts = ["Compute 2 + 3.\n", f"{BOS}Compute 2 + 3.\n", "", "Step 1: 2 + 3 = 5 ки\n"]
    plain = [tok.encode(p, add_special_tokens=False) for p in prompts]
    assert encode_prompts(tok, [bos], prompts) == [ids if ids[:1] == [bos] else [bos] + ids for ids in plain]
    assert plain[1][0] == bos and plain[1][1:] == plain[0]
    assert encode_prompts(tok, [], prompts) == plain
    assert encode_prompts(tok, [bos], []) == []


def test_vllm_engine_sends_bos_with_the_prompt_ids(bos_model_dir, monkeypatch):
    seen = install_fake_vllm(monkeypatch)
    from infscale.search.engine_base import SamplingParams
    from infscale.search.vllm_engine import VLLMEngine

    engine = VLLMEngine(str(bos_model_dir))
    engine.generate(["Compute 2 + 3.\n"], SamplingParams(n=1, temperature=1.0, max_new_tokens=1))
    tok = engine.tokenizer
    assert seen.prompts == [[tok.bos_token_id] + tok.encode("Compute 2 + 3.\n", add_special_tokens=False)]


def test_prm_scores_after_bos(tmp_path):
    """A PRM whose tokenizer adds BOS reads it first, and its tags stay where they are in the text."""
    from transformers import GPTNeoXConfig, GPTNeoXForTokenClassification

    from infscale.core.stepformat import format_prompt
    from infscale.search.prm_scoring import ProcessRewardModel, tag_token_positions

    tok = _tokenizer(f"{BOS} $A")
    torch.manual_seed(0)
    GPTNeoXForTokenClassification(GPTNeoXConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=128, num_labels=1, pad_token_id=tok.pad_token_id)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    prm = ProcessRewardModel(str(tmp_path))
    q, s = "Compute 2 + 3.", "Step 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"
    (scores,), (read,) = prm.score([q], [s])
    ids, positions = tag_token_positions(prm.tokenizer, format_prompt(q) + s)
    with torch.no_grad():
        logits = prm.model(input_ids=torch.tensor([[tok.bos_token_id] + ids])).logits[0, :, 0]
    assert read == len(ids) + 1
    assert scores == pytest.approx(torch.sigmoid(logits[[p + 1 for p in positions]]).tolist(), abs=1e-6)
    without = torch.sigmoid(prm.model(input_ids=torch.tensor([ids])).logits[0, :, 0][positions]).tolist()
    assert scores != pytest.approx(without, abs=1e-6)  # the BOS changes what the PRM says: it matters
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["bos_token"] == BOS


def test_policy_likelihood_verifier_reads_bos_first(bos_model_dir):
    """The likelihood verifier reads what its policy was trained on: BOS, prompt, solution."""
    from infscale.core.stepformat import format_prompt
    from infscale.search.policy_likelihood import PolicyLikelihoodVerifier

    v = PolicyLikelihoodVerifier(str(bos_model_dir))
    q, s = "Compute 2 + 3.", "Step 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"
    ids, start, _ = v.encode(q, s)
    tok = v.tokenizer
    assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1
    assert start == 1 + len(tok.encode(format_prompt(q), add_special_tokens=False))
    (raw,), (read,) = v.raw_step_scores([q], [s])
    assert read == len(ids)
    with torch.no_grad():
        logp = torch.log_softmax(v.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
    first_step_end = ids.index(tok.convert_tokens_to_ids("ки"))
    want = min(float(logp[t - 1, ids[t]]) for t in range(start, first_step_end + 1))
    assert raw[0] == pytest.approx(want, abs=1e-5)
