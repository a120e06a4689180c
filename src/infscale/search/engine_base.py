"""What every generation engine shares: the `Engine` contract, its records (`SamplingParams`, `Generation`,
`Completion`), stop-string cutting, derived seeds and freeing GPU memory. The transformers engine (engines.py)
and the vLLM engine (vllm_engine.py) both build on this module; strategies and tree search use only it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass
class Completion:
    text: str  # generated text; a matched stop string is kept at its end
    tokens: int  # generated tokens, including the end-of-text or stop token
    finish_reason: str  # "stop" (end-of-text or stop string) or "length"


@dataclass
class Generation:
    prompt_tokens: int
    completions: list[Completion] = field(default_factory=list)


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.n, int) or isinstance(self.n, bool) or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")


class Engine(Protocol):
    tokenizer: object
    context_length: int

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Generation]: ...

    def close(self) -> None: ...


def truncate_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut `text` after the earliest stop string (kept); return (text, whether a stop string matched)."""
    hits = [(text.find(s), s) for s in stop if s and s in text]
    if not hits:
        return text, False
    pos, s = min(hits)
    return text[: pos + len(s)], True


def encode_prompt(tokenizer, prefix: list[int], prompt: str) -> list[int]:
    """A prompt's token ids as an engine reads it: the tokenizer's leading special tokens (`prefix`, its BOS where
    it adds one), then the text, special tokens written in it (a chat template's) read as those tokens. A prompt
    whose text already starts with them (Llama-3's template writes its BOS) does not get them twice."""
    return _after_prefix(prefix, tokenizer.encode(prompt, add_special_tokens=False))


def encode_prompts(tokenizer, prefix: list[int], prompts: Sequence[str]) -> list[list[int]]:
    """encode_prompt of each prompt, in one call of a Hugging Face tokenizer (the same ids: a batch is encoded text
    by text)."""
    if not prompts:
        return []
    return [_after_prefix(prefix, ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]


def _after_prefix(prefix: list[int], ids: list[int]) -> list[int]:
    return ids if prefix and ids[: len(prefix)] == prefix else prefix + ids


def end_token_ids(tokenizer, generation_config=None) -> list[int]:
    """The ids that end a generation: the tokenizer's end-of-text first, then those the checkpoint's generation
    config adds (an instruct model ends its turn with another token, e.g. Qwen2.5-Instruct's <|im_end|> beside
    <|endoftext|>)."""
    ids = [tokenizer.eos_token_id]
    extra = getattr(generation_config, "eos_token_id", None)
    for i in extra if isinstance(extra, (list, tuple)) else [extra]:
        if i is not None and int(i) not in ids:
            ids.append(int(i))
    return ids


def derived_seed(*parts) -> int:
    """A stable 31-bit seed from any parts (python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


def free_memory() -> None:
    """Collect garbage and hand cached CUDA memory back, so the next model on the same GPU finds it free."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
