"""Inference FLOPs (Kaplan et al. 2020), as used by Wu et al. 2024.

Forward FLOPs per token = 2N + 2 * n_layer * n_ctx * d_attn, where N is the number of
non-embedding parameters and n_ctx the number of tokens attended to: a token at 1-based
position t (prompt included) attends to t tokens.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _check_count(name: str, value: Any) -> int:
    """Validate a non-negative integer argument."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return int(value)


@dataclass(frozen=True)
class ModelShape:
    non_embedding_params: int
    n_layer: int
    d_attn: int  # attention width = hidden size

    def __post_init__(self) -> None:
        _check_count("non_embedding_params", self.non_embedding_params)
        _check_count("n_layer", self.n_layer)
        _check_count("d_attn", self.d_attn)

    @classmethod
    def from_hf_config(cls, config: Any, non_embedding_params: int | None = None) -> ModelShape:
        """Shape from a transformers config (or dict); N defaults to 12 * n_layer * d_model^2."""
        get = config.__getitem__ if isinstance(config, Mapping) else lambda k: getattr(config, k)
        n_layer, d_model = int(get("num_hidden_layers")), int(get("hidden_size"))
        if non_embedding_params is None:
            non_embedding_params = 12 * n_layer * d_model**2
        return cls(non_embedding_params=non_embedding_params, n_layer=n_layer, d_attn=d_model)


def _attn(shape: ModelShape) -> int:
    return 2 * shape.n_layer * shape.d_attn


def prefill_flops(shape: ModelShape, prompt_tokens: int) -> float:
    """Forward over P prompt tokens: 2N*P + 2*L*d * sum_{t=1..P} t."""
    p = _check_count("prompt_tokens", prompt_tokens)
    return float(2 * shape.non_embedding_params * p + _attn(shape) * (p * (p + 1) // 2))


def decode_flops(shape: ModelShape, prompt_tokens: int, generated_tokens: int) -> float:
    """G generated tokens after P prompt tokens: 2N*G + 2*L*d * sum_{t=1..G} (P + t)."""
    p = _check_count("prompt_tokens", prompt_tokens)
    g = _check_count("generated_tokens", generated_tokens)
    return float(2 * shape.non_embedding_params * g + _attn(shape) * (g * p + g * (g + 1) // 2))


def scoring_flops(shape: ModelShape, tokens: int) -> float:
    """A reward model reading a sequence of ``tokens`` tokens (one forward pass)."""
    _check_count("tokens", tokens)
    return prefill_flops(shape, tokens)


@dataclass
class FlopsCount:
    policy_prefill: float = 0.0
    policy_decode: float = 0.0
    prm: float = 0.0

    @property
    def policy(self) -> float:
        return self.policy_prefill + self.policy_decode

    @property
    def total(self) -> float:
        return self.policy + self.prm

    def __add__(self, other: FlopsCount) -> FlopsCount:
        if not isinstance(other, FlopsCount):
            return NotImplemented
        return FlopsCount(
            self.policy_prefill + other.policy_prefill,
            self.policy_decode + other.policy_decode,
            self.prm + other.prm,
        )

    def __radd__(self, other: Any) -> FlopsCount:
        # Lets sum(counts) start from the integer 0.
        if other == 0:
            return self
        return NotImplemented

    def as_dict(self) -> dict[str, float]:
        return {
            "policy_prefill_flops": self.policy_prefill,
            "policy_decode_flops": self.policy_decode,
            "prm_flops": self.prm,
            "policy_flops": self.policy,
            "total_flops": self.total,
        }
