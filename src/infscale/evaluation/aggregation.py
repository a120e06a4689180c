"""Aggregating candidate solutions: PRM step-score reduction and voting (Wu et al. 2024, Sec. 3)."""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

REDUCTIONS = ("last", "min", "prod", "mean")
AGGREGATIONS = ("majority", "weighted_majority", "best_of_n")


def reduce_step_scores(scores: Sequence[float], how: str = "last") -> float:
    """Collapse a candidate's per-step PRM scores (each in [0, 1]) into one score."""
    if how not in REDUCTIONS:
        raise ValueError(f"unknown reduction {how!r}; expected one of {REDUCTIONS}")
    if any(math.isnan(s) for s in scores):
        raise ValueError("NaN step score")
    if len(scores) == 0:
        return 0.0
    if how == "last":
        return float(scores[-1])
    if how == "min":
        return float(min(scores))
    if how == "prod":
        return float(math.prod(scores))
    return float(math.fsum(scores) / len(scores))  # mean


def aggregate(
    answers: Sequence[str | None],
    weights: Sequence[float] | None,
    method: str,
    key: Callable[[str], Hashable] | None = None,
) -> str | None:
    """Pick one answer from candidates; None answers (unparseable) never vote nor win.

    Answers with equal ``key(answer)`` form one group, represented by its first-seen answer.
    """
    if method not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation method {method!r}; expected one of {AGGREGATIONS}")
    if method != "majority":
        if weights is None:
            raise ValueError(f"method {method!r} requires weights")
        if len(weights) != len(answers):
            raise ValueError(f"got {len(answers)} answers but {len(weights)} weights")
    keyf = key if key is not None else (lambda a: a)

    if method == "best_of_n":
        assert weights is not None
        best: str | None = None
        best_w = -math.inf
        for a, w in zip(answers, weights):
            # Strict '>' keeps the first candidate on ties; first valid one always wins over -inf.
            if a is not None and (best is None or w > best_w):
                best, best_w = a, w
        return best

    # Group-level scores; dicts keep insertion order, i.e. first-seen order.
    score: dict[Hashable, float] = {}
    rep: dict[Hashable, str] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        k = keyf(a)
        if k not in rep:
            rep[k], score[k] = a, 0.0
        score[k] += 1.0 if method == "majority" else float(weights[i])  # type: ignore[index]
    if not rep:
        return None
    # max() returns the first maximal element, i.e. the first-seen group on ties.
    winner = max(score, key=lambda k: score[k])
    return rep[winner]


def subsample(items: Sequence[T], n: int) -> Sequence[T]:
    """First ``n`` items: candidates are generated once at the largest n and prefixes taken."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > len(items):
        raise ValueError(f"n must be an int in [1, {len(items)}], got {n!r}")
    return items[:n]
