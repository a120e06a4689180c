"""Diverse verifier tree search, DVTS (Beeching et al. 2024; huggingface/search-and-learn,
sal/search/diverse_verifier_tree_search.py).

Per problem, budget N and beam width M (`beam_width`, M divides N): N/M independent subtrees, each a beam search
of budget M that keeps its one best open node and expands it M times (it greedily follows its best child).
Depth 1 samples the N first steps, M a subtree; finished nodes are candidates (the union over the subtrees); a
subtree stops when M of its paths have finished, when it has no open new node, or at `max_depth`. Subtrees never
compare rewards with each other, so a PRM that prefers one branch cannot pull them all onto it (beam search's
failure mode). The implementation is beam_search.run_beam_search with N/M groups; each node records its subtree.
"""
from __future__ import annotations

from infscale.core.policy_format import PolicyFormat
from infscale.search.beam_search import beam_width, run_beam_search
from infscale.search.engine_base import Engine


def run_dvts(engine: Engine, prm, rows: list[dict], grader: str, n: int, params: dict, seed: int,
             fmt: PolicyFormat | None = None) -> list[dict]:
    """One record per row (candidates = finished paths of every subtree, tree, cost); see the module docstring."""
    m = beam_width("dvts", n, params)
    return run_beam_search(engine, prm, rows, grader, n, params, seed, groups=n // m, strategy="dvts", fmt=fmt)
