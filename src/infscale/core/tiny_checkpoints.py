"""Tiny random checkpoints in the layout of released models, built locally (no network): tokenizers that carry
the real ones' special tokens and chat templates (Qwen2.5's ChatML with `<extra_0>`, Llama-3.1's headers,
Mistral's `<s>`), and a tiny model per verifier family saved with the release's weight names
(search/prm_families.py, docs/verifiers.md). Tests, benchmarks/gpu_check.py and the CI study use them; their
scores mean nothing, their token layout and weight names are the real ones'."""
from __future__ import annotations

import json
from pathlib import Path

# Qwen2.5's chat template, trimmed of tools: ChatML turns, a default system turn when none is given.
QWEN_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# Llama-3.1's chat template, trimmed of tools: BOS, a system turn with the knowledge and today dates, every
# turn's content trimmed between header ids and <|eot_id|>.
LLAMA3_CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}{{- 'Today Date: 26 Jul 2024\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim"
    " + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)
# Mistral-Instruct's template: [INST] turns after BOS.
MISTRAL_CHAT_TEMPLATE = (
    "{{- bos_token }}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '[INST] ' + message['content'] + ' [/INST]' }}"
    "{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + eos_token }}{%- endif %}"
    "{%- endfor %}"
)

CORPUS = [
    "Janet has 3 apples and buys 4 more. How many apples does she have?",
    "Step 1: 3 + 4 = 7. Step 2: She has 7 apples. The answer is: 7",
    "Compute 12 - 5 + 9 and simplify the result. So the answer is $\\boxed{16}$.",
    "Let x be the number of pens; then 2x + 6 = 20, so x = 7.\n\nTherefore the final answer is 7.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
    "You are a helpful assistant. Cutting Knowledge Date: December 2023 Today Date: 26 Jul 2024",
    "system user assistant + - * / = ( ) , . : ; ? ! ки\n",
]


def _byte_bpe(special_tokens: list[str], vocab_size: int = 420):
    """A byte-level BPE trained on a small math corpus, with `special_tokens` as its first ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer, tok.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    tok.train_from_iterator(CORPUS * 20, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return tok


def _with_bos(tok, bos: str) -> None:
    from tokenizers import processors

    tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                       special_tokens=[(bos, tok.token_to_id(bos))])


def qwen_tokenizer(bos_token: str | None = None):
    """Qwen2.5-like: ChatML specials and `<extra_0>` (Qwen2.5-Math-PRM's step separator), no BOS added (Qwen
    tokenizers have none; Skywork's PRM tokenizer names `<|endoftext|>` as its bos_token)."""
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<extra_0>"]
    fast = PreTrainedTokenizerFast(tokenizer_object=_byte_bpe(specials), eos_token="<|im_end|>",
                                   pad_token="<|endoftext|>", bos_token=bos_token,
                                   additional_special_tokens=["<|im_start|>", "<extra_0>"])
    fast.chat_template = QWEN_CHAT_TEMPLATE
    return fast


def llama3_tokenizer():
    """Llama-3.1-like: <|begin_of_text|> added before every text, header and <|eot_id|> specials, Llama-3.1's chat
    template (a system turn with dates first)."""
    from transformers import PreTrainedTokenizerFast

    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = _byte_bpe(specials)
    _with_bos(tok, "<|begin_of_text|>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|begin_of_text|>", eos_token="<|eot_id|>",
                                   additional_special_tokens=["<|start_header_id|>", "<|end_header_id|>"])
    fast.chat_template = LLAMA3_CHAT_TEMPLATE
    return fast


def mistral_tokenizer():
    """Mistral-like: <s> added before every text, </s> as EOS, the [INST] chat template."""
    from transformers import PreTrainedTokenizerFast

    tok = _byte_bpe(["<unk>", "<s>", "</s>"])
    _with_bos(tok, "<s>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    fast.chat_template = MISTRAL_CHAT_TEMPLATE
    return fast


SHARPEN = 30.0  # output heads scaled up: a random tiny model's step scores spread over (0, 1), not all near 0.5

TINY = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=512, tie_word_embeddings=False)


def _qwen2_config(tok):
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, **TINY)


def _save_state_dict(state: dict, config, tok, out: Path) -> None:
    """The release's layout: config.json, model.safetensors with the given weight names, the tokenizer."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(out)
    save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    tok.save_pretrained(out)


def build_qwen_prm(out: str | Path, seed: int = 0) -> Path:
    """Qwen2.5-Math-PRM's layout: a Qwen2 backbone under `model.`, the head `score.0` (Linear h->h), ReLU,
    `score.2` (Linear h->2); config.json names Qwen2ForProcessRewardModel with its remote-code auto_map (never run
    unless trust_remote_code)."""
    import torch
    from transformers import Qwen2Model

    out, tok = Path(out), qwen_tokenizer()
    config = _qwen2_config(tok)
    torch.manual_seed(seed)
    backbone = Qwen2Model(config)
    head = torch.nn.Sequential(torch.nn.Linear(config.hidden_size, config.hidden_size), torch.nn.ReLU(),
                               torch.nn.Linear(config.hidden_size, 2))
    with torch.no_grad():
        head[2].weight.mul_(SHARPEN)
    state = {f"model.{k}": v for k, v in backbone.state_dict().items()}
    state.update({f"score.{k}": v for k, v in head.state_dict().items()})
    config.architectures = ["Qwen2ForProcessRewardModel"]
    config.auto_map = {"AutoConfig": "configuration_qwen2_rm.Qwen2RMConfig",
                       "AutoModel": "modeling_qwen2_rm.Qwen2ForProcessRewardModel"}
    _save_state_dict(state, config, tok, out)
    return out


def build_skywork_prm(out: str | Path, seed: int = 0) -> Path:
    """Skywork-o1-Open-PRM's layout: a Qwen2 causal LM (`model.`, `lm_head.`) and the value head
    `v_head.summary` (Linear h->1), as skywork-o1-prm-inference's PRM_MODEL.state_dict saves it."""
    import torch
    from transformers import Qwen2ForCausalLM

    out, tok = Path(out), qwen_tokenizer(bos_token="<|endoftext|>")
    config = _qwen2_config(tok)
    torch.manual_seed(seed)
    lm = Qwen2ForCausalLM(config)
    v_head = torch.nn.Linear(config.hidden_size, 1)
    with torch.no_grad():
        v_head.weight.mul_(SHARPEN)
    state = dict(lm.state_dict())
    state.update({f"v_head.summary.{k}": v for k, v in v_head.state_dict().items()})
    config.architectures = ["Qwen2ForPrmModel"]
    _save_state_dict(state, config, tok, out)
    return out


def _build_sharpened(out: str | Path, tok, kind: str, head: str, seed: int, **config) -> Path:
    """A tiny `kind` model (a transformers class name: its config is `<family>Config`) with `tok`, its `head`
    weights sharpened so that scores differ between steps, saved with the tokenizer."""
    import torch
    import transformers

    out = Path(out)
    tok.pad_token = tok.eos_token
    family = kind.split("For")[0]
    cfg = getattr(transformers, f"{family}Config")(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                                   eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                                                   **config, **TINY)
    torch.manual_seed(seed)
    model = getattr(transformers, kind)(cfg)
    with torch.no_grad():
        getattr(model, head).weight.mul_(SHARPEN)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def build_rlhflow_prm(out: str | Path, seed: int = 0) -> Path:
    """RLHFlow's layout: a Llama causal LM with a Llama-3.1 tokenizer; its `+` and `-` logits read the steps."""
    return _build_sharpened(out, llama3_tokenizer(), "LlamaForCausalLM", "lm_head", seed)


def build_token_classification_prm(out: str | Path, seed: int = 0, num_labels: int = 2) -> Path:
    """A TRL PRMTrainer checkpoint's layout: a Mistral token-classification model with two labels (1: the step
    is correct) and a Mistral tokenizer that adds <s>."""
    return _build_sharpened(out, mistral_tokenizer(), "MistralForTokenClassification", "score", seed,
                            num_labels=num_labels, sliding_window=None)


def build_math_shepherd_prm(out: str | Path, seed: int = 0) -> Path:
    """peiyi9979/math-shepherd-mistral-7b-prm's layout: a Mistral causal LM whose `+` and `-` logits at each step
    tag ` ки` score the steps (search/prm_scoring.py, reading plus_minus)."""
    return _build_sharpened(out, mistral_tokenizer(), "MistralForCausalLM", "lm_head", seed, sliding_window=None)


POLICY_TOKENIZERS = {"qwen2": qwen_tokenizer, "llama": llama3_tokenizer, "mistral": mistral_tokenizer}


def build_tiny_policy(arch: str, out: str | Path, seed: int = 0, dtype: str = "float32") -> Path:
    """A tiny random instruct-style policy: a `arch` (qwen2, llama, mistral) causal LM with that family's
    tokenizer and chat template, saved in `dtype` (what the transformers engine loads it in)."""
    import torch
    import transformers

    if arch not in POLICY_TOKENIZERS:
        raise ValueError(f"no tiny policy of architecture {arch!r}; known: {', '.join(POLICY_TOKENIZERS)}")
    out, tok = Path(out), POLICY_TOKENIZERS[arch]()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    name = {"qwen2": "Qwen2", "llama": "Llama", "mistral": "Mistral"}[arch]
    extra = {"sliding_window": None} if arch == "mistral" else {}
    config = getattr(transformers, f"{name}Config")(
        vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, **TINY, **extra)
    torch.manual_seed(seed)
    model = getattr(transformers, f"{name}ForCausalLM")(config)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tok.save_pretrained(out)
    return out


BUILDERS = {"math_shepherd": build_math_shepherd_prm, "qwen_prm": build_qwen_prm, "skywork": build_skywork_prm,
            "rlhflow": build_rlhflow_prm, "token_classification": build_token_classification_prm}


def build_tiny_prm(family: str, out: str | Path, seed: int = 0) -> Path:
    """A tiny random checkpoint of `family` (a key of BUILDERS) at `out`."""
    if family not in BUILDERS:
        raise ValueError(f"no tiny checkpoint for family {family!r}; known: {', '.join(BUILDERS)}")
    path = BUILDERS[family](out, seed=seed)
    (Path(path) / "tiny_checkpoint.json").write_text(json.dumps({"family": family, "seed": seed}))
    return Path(path)
