"""Tiny stand-ins for a released instruct policy (Qwen2.5-Instruct): a Qwen2-architecture causal LM with random
weights and a byte-level BPE tokenizer built here with the same special tokens (<|endoftext|>, <|im_start|>,
<|im_end|>) and the same chat template layout. Nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
# Qwen2.5-Instruct's template without its tool-calling branches
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")
TEXTS = [
    "What is 12 + 30?\n\nStep 1: 12 + 30 = 42.\n\nThe final answer is $\\boxed{42}$.",
    "Compute 7 * 6 - 5.\n\nFirst, 7 * 6 = 42.\n\nThen 42 - 5 = 37.\n\nSo the answer is \\boxed{37}.",
    "Please reason step by step, and put your final answer within \\boxed{}.",
]


def chat_tokenizer():
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's pre-tokenizer (its tokenizer.json): digits one by one, a newline run kept whole ("\n\n" is a token)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=[ENDOFTEXT, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    # as Qwen2.5-Instruct's tokenizer_config: no BOS, end of turn as eos, end-of-text as pad
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=ENDOFTEXT,
                                   chat_template=CHAT_TEMPLATE)


def save_chat_policy(out: str | Path, seed: int = 0, end_logit: float = 3.0, delimiter_logit: float = 4.0,
                     hidden_size: int = 32, layers: int = 1) -> Path:
    """A tiny Qwen2 chat policy with random weights whose steps end at "\\n\\n" and whose turns end at <|im_end|>
    often enough for a tree search to finish paths: every token embedding carries a large constant unit, so the
    last hidden state is about constant there, and the output head reads that unit only for those two tokens."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = chat_tokenizer()
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=512,
                         tie_word_embeddings=False, eos_token_id=tok.convert_tokens_to_ids(IM_END),
                         pad_token_id=tok.pad_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    delimiter = tok.encode("\n\n", add_special_tokens=False)
    assert len(delimiter) == 1, "the tokenizer should merge the step delimiter into one token"
    with torch.no_grad():
        model.get_input_embeddings().weight[:, 0] = 8.0
        head = model.get_output_embeddings().weight
        head[:, 0] = 0.0
        scale = 8.0 / (64.0 / hidden_size) ** 0.5  # unit 0 after the final RMSNorm: about sqrt(hidden_size)
        head[tok.convert_tokens_to_ids(IM_END), 0] = end_logit / scale
        head[delimiter[0], 0] = delimiter_logit / scale
    out = Path(out)
    model.generation_config = GenerationConfig(
        eos_token_id=[tok.convert_tokens_to_ids(IM_END), tok.convert_tokens_to_ids(ENDOFTEXT)],
        pad_token_id=tok.pad_token_id)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
