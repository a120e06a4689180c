"""Tests for infscale.evaluation.flops: Kaplan et al. (2020) inference FLOPs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infscale.core.models import non_embedding_params_of
from infscale.evaluation.flops import (
    FlopsCount,
    ModelShape,
    decode_flops,
    prefill_flops,
    scoring_flops,
)

SHAPE = ModelShape(non_embedding_params=1000, n_layer=2, d_attn=8)


def test_hand_example() -> None:
    # N=1000, n_layer=2, d_attn=8 -> attention term per attended token: 2*2*8 = 32.
    # prefill P=3: 2*1000*3 + 32*(1+2+3) = 6000 + 192 = 6192
    assert prefill_flops(SHAPE, 3) == 6192.0
    # decode G=2 after P=3: 2*1000*2 + 32*((3+1)+(3+2)) = 4000 + 288 = 4288
    assert decode_flops(SHAPE, 3, 2) == 4288.0
    # prefill P=5: 2*1000*5 + 32*(1+2+3+4+5) = 10000 + 480 = 10480 = 6192 + 4288
    assert prefill_flops(SHAPE, 5) == 10480.0
    # scoring a 3-token sequence == prefill of 3 tokens
    assert scoring_flops(SHAPE, 3) == 6192.0


def test_single_token() -> None:
    # one token attends to itself: 2N + 2*L*d*1 = 2000 + 32
    assert prefill_flops(SHAPE, 1) == 2032.0
    assert prefill_flops(SHAPE, 0) == 0.0


counts = st.integers(min_value=0, max_value=5000)
shapes = st.builds(
    ModelShape,
    non_embedding_params=st.integers(min_value=0, max_value=10**9),
    n_layer=st.integers(min_value=0, max_value=100),
    d_attn=st.integers(min_value=0, max_value=8192),
)


@given(shapes, counts, counts)
def test_prefill_plus_decode_is_prefill_of_concat(shape: ModelShape, p: int, g: int) -> None:
    assert prefill_flops(shape, p) + decode_flops(shape, p, g) == prefill_flops(shape, p + g)


@given(shapes, counts)
def test_decode_zero_tokens(shape: ModelShape, p: int) -> None:
    assert decode_flops(shape, p, 0) == 0.0


@given(st.integers(min_value=0, max_value=10**6), st.integers(2, 5), counts, counts)
def test_linear_in_n(n: int, k: int, p: int, g: int) -> None:
    # With no attention term (n_layer=0) FLOPs are exactly proportional to N.
    a, b = ModelShape(n, 0, 64), ModelShape(k * n, 0, 64)
    assert prefill_flops(b, p) == k * prefill_flops(a, p)
    assert decode_flops(b, p, g) == k * decode_flops(a, p, g)
    # With attention, the N-part is affine: f(kN) - f(0) == k * (f(N) - f(0)).
    z, c, kc = ModelShape(0, 2, 8), ModelShape(n, 2, 8), ModelShape(k * n, 2, 8)
    assert decode_flops(kc, p, g) - decode_flops(z, p, g) == k * (
        decode_flops(c, p, g) - decode_flops(z, p, g)
    )


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: prefill_flops(SHAPE, -1), "prompt_tokens"),
        (lambda: prefill_flops(SHAPE, 2.0), "prompt_tokens"),
        (lambda: decode_flops(SHAPE, 3, -2), "generated_tokens"),
        (lambda: decode_flops(SHAPE, True, 2), "prompt_tokens"),
        (lambda: scoring_flops(SHAPE, -5), "tokens"),
        (lambda: ModelShape(-1, 2, 8), "non_embedding_params"),
    ],
)
def test_invalid_inputs(call, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        call()


def test_from_hf_config_dict_and_object() -> None:
    cfg = {"num_hidden_layers": 4, "hidden_size": 32, "vocab_size": 10}
    shape = ModelShape.from_hf_config(cfg)
    assert shape == ModelShape(12 * 4 * 32**2, 4, 32)

    from transformers import GPTNeoXConfig

    obj = GPTNeoXConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2)
    assert ModelShape.from_hf_config(obj) == ModelShape(12 * 2 * 16**2, 2, 16)
    assert ModelShape.from_hf_config(obj, non_embedding_params=123).non_embedding_params == 123


def test_flops_count() -> None:
    a = FlopsCount(policy_prefill=1.0, policy_decode=2.0, prm=4.0)
    b = FlopsCount(policy_prefill=10.0, policy_decode=20.0, prm=40.0)
    c = a + b
    assert c == FlopsCount(11.0, 22.0, 44.0)
    assert c.policy == 33.0 and c.total == 77.0
    assert sum([a, b]) == c
    assert FlopsCount().total == 0
    assert c.as_dict() == {
        "policy_prefill_flops": 11.0,
        "policy_decode_flops": 22.0,
        "prm_flops": 44.0,
        "policy_flops": 33.0,
        "total_flops": 77.0,
    }


def test_non_embedding_params_of_gpt_neox() -> None:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
    )
    model = GPTNeoXForCausalLM(cfg)
    total = sum(p.numel() for p in model.parameters())
    # embed_out is named lm_head in transformers 5; get_output_embeddings() covers both names.
    emb = model.gpt_neox.embed_in.weight.numel() + model.get_output_embeddings().weight.numel()
    assert emb == 2 * 50 * 16
    assert non_embedding_params_of(model) == total - emb
    # Independent hand count per layer (d=16, ffn=64): 2 LayerNorms 4*16=64, qkv 48*16+48=816,
    # attn out 16*16+16=272, h->4h 64*16+64=1088, 4h->h 16*64+16=1040 -> 3280;
    # 2 layers + final LayerNorm (32) = 6592.
    assert non_embedding_params_of(model) == 2 * 3280 + 32


@pytest.mark.parametrize("make, message", [
    (lambda: ModelShape(non_embedding_params=-1, n_layer=1, d_attn=1), "non_embedding_params must be non-negative"),
    (lambda: ModelShape(non_embedding_params=1, n_layer=-2, d_attn=1), "n_layer must be non-negative, got -2"),
    (lambda: ModelShape(non_embedding_params=1, n_layer=1, d_attn=1.5), "d_attn must be an int, got 1.5"),
    (lambda: prefill_flops(ModelShape(1, 1, 1), -3), "prompt_tokens must be non-negative"),
    (lambda: decode_flops(ModelShape(1, 1, 1), -1, 2), "prompt_tokens must be non-negative"),
    (lambda: decode_flops(ModelShape(1, 1, 1), 1, -2), "generated_tokens must be non-negative"),
    (lambda: scoring_flops(ModelShape(1, 1, 1), -1), "tokens must be non-negative"),
])
def test_errors_name_the_argument(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_non_embedding_params_of_modules_without_output_embeddings() -> None:
    import torch

    plain = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 3))  # no get_output_embeddings
    assert non_embedding_params_of(plain) == 4 * 3 + 3

    class NotCallable(torch.nn.Module):
        get_output_embeddings = None  # an attribute, not a method

        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(2, 2)

    assert non_embedding_params_of(NotCallable()) == 6
