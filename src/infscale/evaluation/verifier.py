"""How well a verifier (the PRM) ranks the candidates of one problem: within-problem and pooled AUC.

Within-problem AUC: over the problems that have at least one right and one wrong candidate, the probability
that a right candidate scores above a wrong one of the SAME problem (ties count one half), averaged over those
problems. This is what best-of-n and weighted voting need; the pooled AUC (all candidates of all problems in one
ranking) also rewards a verifier that only knows which problems are hard.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np


def pairwise_auc(scores: Sequence[float], correct: Sequence[bool]) -> float:
    """P(score of a right candidate > score of a wrong one) + 0.5 P(equal); NaN without both kinds."""
    s, c = np.asarray(scores, float), np.asarray(correct, bool)
    if len(s) != len(c):
        raise ValueError(f"{len(s)} scores but {len(c)} correctness flags")
    pos, neg = s[c], s[~c]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    # Rank-based (Mann-Whitney U), exact with ties: O(k log k) instead of comparing every pair.
    allv = np.concatenate([pos, neg])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1  # average rank of a tie group, 1-based
        i = j + 1
    u = ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2
    return float(u / (len(pos) * len(neg)))


def within_problem_auc(problems: Iterable[tuple[Sequence[float], Sequence[bool]]]) -> tuple[float, int]:
    """Mean pairwise_auc over the problems that have both right and wrong candidates, and how many those are
    (NaN, 0 when none has both)."""
    aucs = [a for scores, correct in problems if not math.isnan(a := pairwise_auc(scores, correct))]
    return (float(np.mean(aucs)), len(aucs)) if aucs else (math.nan, 0)


def pooled_auc(problems: Iterable[tuple[Sequence[float], Sequence[bool]]]) -> float:
    """pairwise_auc over all candidates of all problems in one ranking."""
    scores, correct = [], []
    for s, c in problems:
        scores += list(s)
        correct += list(c)
    return pairwise_auc(scores, correct)
