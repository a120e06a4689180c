"""What the paper-scale GPU jobs decide, checked on CPU: which device each model goes to, what is passed to vLLM,
how the PRM reads its checkpoint and its step tags, and how much it reads at once. Fake device counts and
free-memory figures, a stand-in `vllm` module recording its arguments, tiny models and tokenizers built here."""
from pathlib import Path

import pytest
import torch
from vllm_support import install_fake_vllm

from infscale.search import placement
from infscale.search.prm_scoring import ProcessRewardModel, normalise_step_tags, tag_token_positions
from infscale.training.prm_training import encode_prm_example

GIB = 2**30


# --- 1. tree search: the PRM on its own GPU, the policy on the others, vLLM's share from what is free ---------------

def test_prm_gets_its_own_gpu_and_the_policy_the_others():
    p = placement.plan_devices(2, with_prm=True)
    assert p.prm_device == "cuda:1" and p.policy_devices == (0,) and p.tensor_parallel_size == 1 and not p.shared
    p = placement.plan_devices(4, with_prm=True)  # Llemma-34B: 34B PRM on one GPU, the 34B policy on two
    assert p.prm_device == "cuda:3" and p.policy_devices == (0, 1) and p.tensor_parallel_size == 2
    p = placement.plan_devices(1, with_prm=True)  # one GPU: shared, the share comes from free memory
    assert p.prm_device == "cuda:0" and p.shared
    assert placement.plan_devices(0, with_prm=True).prm_device == "cpu"


def test_memory_share_is_what_is_really_free():
    assert placement.memory_share(0.8, 70 * GIB, 80 * GIB) == 0.8  # a free GPU: the configured share
    share = placement.memory_share(0.8, 17 * GIB, 80 * GIB)  # a 63 GiB PRM on the same GPU
    assert share * 80 * GIB <= 17 * GIB and share > 0.1
    with pytest.raises(RuntimeError, match="give the PRM its own GPU"):
        placement.memory_share(0.8, 5 * GIB, 80 * GIB)


@pytest.fixture
def fake_vllm(monkeypatch):
    """A stand-in vllm module on a GPU platform: the keyword arguments each LLM gets."""
    return install_fake_vllm(monkeypatch).llm


@pytest.fixture
def four_gpus(monkeypatch):
    """Four visible GPUs of 80 GiB; device 0 and 1 have 78 GiB free."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d=0: (78 * GIB, 80 * GIB))


def test_tree_search_job_places_prm_then_vllm_with_tensor_parallel(fake_vllm, four_gpus, monkeypatch,
                                                                    tiny_policy_dir):
    prm_calls = []

    class SpyPRM:
        def __init__(self, path, device=None, **kwargs):
            prm_calls.append((path, device, kwargs))

    monkeypatch.setattr("infscale.search.prm_scoring.ProcessRewardModel", SpyPRM)
    # verifiers.load_verifier holds its own reference, bound when an earlier test imported it
    monkeypatch.setattr("infscale.search.verifiers.ProcessRewardModel", SpyPRM)
    engine = {"name": "vllm", "batch_size": 256, "gpu_memory_utilization": 0.9, "max_model_len": 4096}
    _, prm = placement.load_policy_and_prm(engine, str(tiny_policy_dir), "prm-dir", 4, {"batch_size": 8})
    assert prm_calls == [("prm-dir", "cuda:3", {"batch_size": 8})]
    (kwargs,) = fake_vllm
    assert kwargs["tensor_parallel_size"] == 2
    assert kwargs["gpu_memory_utilization"] == 0.9  # 78 of 80 GiB free: the configured share
    assert kwargs["max_model_len"] == 128  # capped at the model's own context (tiny policy: 128)


# --- 2. tensor parallelism from the config, per model ---------------------------------------------------------------

def test_tensor_parallel_size_passes_through_per_model_and_is_checked(fake_vllm, four_gpus, tiny_policy_dir):
    from infscale.core import config as cfg

    config = {"engine": {"name": "vllm", "batch_size": 8},
              "models": {"big": {"engine": {"tensor_parallel_size": 4}}, "small": {}}}
    big = cfg.engine_params(config, "big")
    placement.load_policy_and_prm(big, str(tiny_policy_dir), None, 4, {})
    placement.load_policy_and_prm(cfg.engine_params(config, "small"), str(tiny_policy_dir), None, 2, {})
    assert [c["tensor_parallel_size"] for c in fake_vllm] == [4, 2]  # configured; default: the job's GPUs
    with pytest.raises(ValueError, match="engine.tensor_parallel_size: 4 GPUs for the policy, but the job has 4"):
        placement.plan_devices(4, with_prm=True, tensor_parallel_size=4)


def test_schema_accepts_tensor_parallel_and_paper_caps_context():
    import yaml

    from infscale.core import config as cfg
    from infscale.core.validation import validate_config

    paper = validate_config(yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")))
    assert paper["engine"]["max_model_len"] >= 1024 + 1024  # a solution (1024) and a long MATH prompt
    assert cfg.engine_params(paper, "llemma-34b")["tensor_parallel_size"] >= 2  # 34B weights leave no KV room on one


# --- 3. a generate job asks for the GPUs its models use --------------------------------------------------------------

def _paper():
    import yaml

    from infscale.core.validation import validate_config

    return validate_config(yaml.safe_load(open(Path(__file__).resolve().parents[1] / "config" / "paper.yaml")))


@pytest.mark.parametrize("model, strategy, gpus", [
    ("llemma-34b", "greedy", 2), ("llemma-34b", "sampling", 2),  # tensor parallel 2, no PRM
    ("llemma-34b", "rebase", 3), ("llemma-34b", "mcts", 3),  # + the PRM on GPU 2
    ("llemma-7b", "sampling", 1), ("llemma-7b", "rebase", 2), ("pythia-410m", "sampling", 1)])
def test_paper_generate_jobs_ask_for_what_they_use(model, strategy, gpus):
    from infscale.core import config as cfg
    from infscale.core.config import TREE_STRATEGIES

    paper = _paper()
    asked = cfg.job_resources(paper, "generate", model, strategy)["gpu"]
    p = placement.plan_devices(asked, strategy in TREE_STRATEGIES,
                               cfg.engine_params(paper, model).get("tensor_parallel_size"))
    assert asked == gpus == placement.gpus_used(p)
    assert set(p.policy_devices) | ({int(p.prm_device[5:])} if p.prm_device else set()) == set(range(gpus))
    placement.check_job_gpus(paper)  # the whole paper config passes


def test_a_job_that_would_hold_an_idle_gpu_is_refused_naming_the_key():
    from infscale.core.config import ConfigError

    paper = _paper()
    paper["models"]["llemma-34b"]["resources"]["generate_tree"]["gpu"] = 4  # the old plan: GPU 2 idle
    with pytest.raises(ConfigError, match=r"models\.llemma-34b\.resources\.generate_tree\.gpu: 4 GPUs .* use 3"):
        placement.check_job_gpus(paper)
    paper = _paper()
    paper["resources"]["generate"]["gpu"] = 3  # sampling 7B: tensor parallel over 2 of 3
    with pytest.raises(ConfigError, match=r"config key resources\.generate\.gpu: 3 GPUs asked for a sampled"):
        placement.check_job_gpus(paper)
    paper = _paper()
    paper["engine"]["name"] = "transformers"  # one device for the policy, whatever the job has
    paper["models"]["llemma-7b"]["resources"] = {"generate": {"gpu": 2}}
    with pytest.raises(ConfigError, match="llemma-7b.resources.generate.gpu: 2 GPUs .* use 1"):
        placement.check_job_gpus(paper)


def test_tree_search_resources_layer_over_generate():
    from infscale.core import config as cfg

    paper = _paper()
    assert cfg.job_resources(paper, "generate", "llemma-7b", "rebase") == {
        **cfg.job_resources(paper, "generate", "llemma-7b", "sampling"), "gpu": 2, "mem_mb": 256000, "threads": 16}
    assert cfg.job_resources(paper, "generate", "llemma-7b") == cfg.job_resources(paper, "generate", "llemma-7b",
                                                                                   "greedy")
    assert cfg.resource_key(paper, "generate", "llemma-34b", "mcts", "gpu") == \
        "models.llemma-34b.resources.generate_tree.gpu"
    assert cfg.resource_key(paper, "generate", "llemma-7b", "mcts", "gpu") == "resources.generate_tree.gpu"


# --- 4. PRM scoring: bf16 on GPU, batches capped by tokens ------------------------------------------------------------

def test_prm_loads_in_bf16_on_gpu(monkeypatch, tiny_policy_dir):
    seen = {}
    from infscale.core import models

    real = models.load_for_inference

    def spy(path, auto_class, padding_side, threads=None, device=None, dtype=None):
        seen["device"], seen["dtype"] = device, dtype
        return real(path, auto_class, padding_side, threads, "cpu", dtype)

    monkeypatch.setattr(models, "load_for_inference", spy)
    prm = ProcessRewardModel(str(tiny_policy_dir), device="cuda:1")
    assert seen == {"device": "cuda:1", "dtype": torch.bfloat16}
    assert next(prm.model.parameters()).dtype == torch.bfloat16


def test_prm_batches_are_capped_by_tokens(tiny_policy_dir):
    prm = ProcessRewardModel(str(tiny_policy_dir), batch_size=256, max_batch_tokens=120)
    shapes = []
    forward = prm.model.forward

    def spy(input_ids, attention_mask):
        shapes.append(tuple(input_ids.shape))
        return forward(input_ids=input_ids, attention_mask=attention_mask)

    prm.model.forward = spy
    questions = [f"Compute {i} + {i}." for i in range(12)]
    solutions = ["Step 1: 1 + 1 = 2 ки\n" * (1 + i % 4) + "The answer is: 2 ки" for i in range(12)]
    scores, _ = prm.score(questions, solutions)
    assert all(rows * width <= 120 for rows, width in shapes) and len(shapes) > 1
    uncapped = ProcessRewardModel(str(tiny_policy_dir), batch_size=256)
    assert [pytest.approx(s, abs=1e-5) for s in uncapped.score(questions, solutions)[0]] == scores


# --- 5. step tags found from the text, for any tokenizer ----------------------------------------------------------------

def _tokenizer(kind):
    """A tiny fast tokenizer in which ` ки` and `ки` are different tokens: byte-level BPE (Llama-3, Pythia) or
    SentencePiece-style Metaspace (Llama-2, Llemma), trained here on step-format text."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    if kind == "bytelevel":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", "isolated"), pre_tokenizers.Metaspace()])
        tok.decoder = decoders.Metaspace()
        alphabet = []
    texts = ["Step 1: 12 + 22 = 34 ки\nStep 2: 34ки 5 ки\nThe answer is: 34 ки"] * 50 + ["ки кики xки"] * 50
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"],
                                                       initial_alphabet=alphabet, show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")


@pytest.mark.parametrize("kind", ["bytelevel", "metaspace"])
def test_tag_positions_come_from_the_text(kind):
    tok = _tokenizer(kind)
    if kind == "bytelevel":  # ` ки` and `ки`: two different single tokens, neither an added token
        assert tok.encode(" ки", add_special_tokens=False) != tok.encode("ки", add_special_tokens=False)
    text = "Q\nStep 1: 12 + 22 = 34ки\nStep 2: 34 ки\nThe answer is: 34 ки"
    ids, positions = tag_token_positions(tok, text)
    assert len(positions) == 3
    for p in positions:  # each position's token ends a tag
        assert tok.decode([ids[p]]).endswith("ки")
    # a PRM row on such a tokenizer: one label per tag (the tag-id lookup found none of ` ки`)
    row = encode_prm_example(tok, normalise_step_tags(text), [1.0, 0.0, 1.0], 512)
    assert [y for y in row["labels"] if y != -100.0] == [1.0, 0.0, 1.0]


def test_tag_spacing_is_normalised():
    assert normalise_step_tags("a 34ки\nb   ки\nc ки") == "a 34 ки\nb ки\nc ки"


@pytest.fixture
def bytelevel_prm_dir(tmp_path):
    """A tiny token-classification PRM on the byte-level tokenizer (tag not an added token)."""
    from transformers import GPTNeoXConfig, GPTNeoXForTokenClassification

    tok = _tokenizer("bytelevel")
    torch.manual_seed(0)
    model = GPTNeoXForTokenClassification(GPTNeoXConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=256, num_labels=1, pad_token_id=tok.pad_token_id))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path


def test_a_step_written_without_space_keeps_its_score(bytelevel_prm_dir):
    prm = ProcessRewardModel(str(bytelevel_prm_dir))
    q = "Compute 12 + 22."
    spaced, tight = "Step 1: 12 + 22 = 34 ки\n", "Step 1: 12 + 22 = 34ки\n"  # depth 1 of a tree search
    (a, b), _ = prm.score([q, q], [spaced, tight])
    assert len(a) == 1 and a == pytest.approx(b)


# --- 6. the released PRM: a reward head repeated over the vocabulary --------------------------------------------------

@pytest.fixture
def repeated_head_prm_dir(tmp_path, tokenizer_dir):
    """A causal LM built the way the authors' convert_checkpoint_to_hf.py builds tkitsers/Llemma-reward-model:
    the scalar reward head copied into every row of lm_head."""
    from infscale.core.models import build_causal_lm
    from infscale.training.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer_dir)
    model = build_causal_lm({"hidden_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}, tok, 0)
    head = torch.randn(1, 32)
    with torch.no_grad():
        model.get_output_embeddings().weight.copy_(head.repeat(len(tok), 1))
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    return tmp_path


def test_released_repeated_head_prm_reads_sigmoid_of_mean_logit(repeated_head_prm_dir):
    from infscale.core.stepformat import format_prompt

    prm = ProcessRewardModel(str(repeated_head_prm_dir))
    q, s = "Compute 5 + 3.", "Step 1: 5 + 3 = 8 ки\nThe answer is: 8 ки"
    (scores,), _ = prm.score([q], [s])
    assert len(scores) == 2 and max(abs(x - 0.5) for x in scores) > 0.01  # `+` against `-` would be 0.5 exactly
    assert prm.reading == "mean_logit"
    ids, positions = tag_token_positions(prm.tokenizer, format_prompt(q) + s)
    with torch.no_grad():
        logits = prm.model(input_ids=torch.tensor([ids])).logits[0]
    expected = torch.sigmoid(logits.mean(-1))[positions].tolist()
    assert scores == pytest.approx(expected, abs=1e-5)


# --- 8. tree search: no PRM job ------------------------------------------------------------------------------------------

def test_tree_candidates_must_carry_their_search_scores():
    from infscale.search.prm_scoring import require_search_scores

    require_search_scores([{"candidates": [{"text": "x", "step_scores": [0.5]}]}], "f.jsonl")
    with pytest.raises(ValueError, match="f.jsonl: row 1, candidate 0"):
        require_search_scores([{"candidates": [{"text": "x"}]}], "f.jsonl")
