"""MCTS with a PRM as value function (Wu et al. 2024, Appendix B).

One iteration per problem: select a leaf from the root by UCT(s) = Q(s) + C * sqrt(ln N(parent) / N(s))
over the children that can still lead somewhere, expand it (`root_children` children at the root, `children`
= 2 elsewhere), value each new node by the PRM (its last step's score) and back-propagate: every ancestor of
a new node, the root included, gets N += 1 and Q = the running mean of the values. So N(s) counts the PRM
values in s's subtree (its own included) and Q(s) is their mean.

`expansions` counts expansions (iterations: one selected node expanded), the root's included: a problem
generates at most root_children + children * (expansions - 1) nodes (paper: 4/8/16 root children for
32/64/128 expansions). Finished nodes are terminal and are the candidates; dropped nodes (see treesearch)
are terminal and unvalued; a node none of whose children can be expanded any more is exhausted and skipped
by selection, and a problem whose root is exhausted stops early.

Every iteration selects one leaf per active problem and expands all of them in ONE engine call (seed
derived_seed(seed, iteration)) and ONE PRM call. Deterministic for a seed: UCT ties go to the earlier child.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from infscale.core.policy_format import PolicyFormat
from infscale.search.engine_base import Engine, derived_seed
from infscale.search.treesearch import Node, SearchParams, Tree, evaluate, expand, start_search


def uct(q: float, n: int, parent_n: int, c: float) -> float:
    """Q + C * sqrt(ln N(parent) / N); an unvisited node comes first."""
    if n == 0:
        return math.inf
    return q + c * math.sqrt(math.log(max(parent_n, 1)) / n)


def best_child(stats: Sequence[tuple[float, int]], parent_n: int, c: float) -> int:
    """Index of the child (Q, N) with the highest UCT; ties to the first."""
    values = [uct(q, n, parent_n, c) for q, n in stats]
    return values.index(max(values))


def root_children_for(expansions: int) -> int:
    return 4 if expansions <= 32 else 8 if expansions <= 64 else 16


@dataclass
class Stats:
    """Visit counts N, mean values Q and exhausted nodes of one tree; the key None is the root."""

    visits: dict[int | None, int] = field(default_factory=lambda: {None: 0})
    value: dict[int | None, float] = field(default_factory=lambda: {None: 0.0})
    exhausted: set[int | None] = field(default_factory=set)
    expansions: int = 0


def select(tree: Tree, st: Stats, c: float) -> Node | None:
    """Descend from the root by UCT over non-exhausted children to an unexpanded node (None: the root)."""
    node: Node | None = None
    while tree.children.get(None if node is None else node.id):
        kids = [k for k in tree.children[None if node is None else node.id] if k.id not in st.exhausted]
        parent_n = st.visits[None if node is None else node.id]
        node = kids[best_child([(st.value[k.id], st.visits[k.id]) for k in kids], parent_n, c)]
    return node


def backpropagate(tree: Tree, st: Stats, node: Node) -> None:
    """Give a newly valued node N = 1, Q = its reward, and add its value to every ancestor's mean."""
    st.visits[node.id], st.value[node.id] = 1, node.reward
    key = node.parent
    while True:
        st.visits[key] = st.visits.get(key, 0) + 1
        st.value[key] = st.value.get(key, 0.0) + (node.reward - st.value.get(key, 0.0)) / st.visits[key]
        if key is None:
            return
        key = tree.nodes[key].parent


def mark_exhausted(tree: Tree, st: Stats, expanded: Node | None) -> None:
    """Terminal children are exhausted; so is a node all of whose children are, up the path."""
    for kid in tree.children.get(None if expanded is None else expanded.id, []):
        if not kid.open:
            st.exhausted.add(kid.id)
    node = expanded
    while True:
        key = None if node is None else node.id
        if not all(k.id in st.exhausted for k in tree.children.get(key, [])):
            return
        st.exhausted.add(key)
        if node is None:
            return
        node = None if node.parent is None else tree.nodes[node.parent]


def run_mcts(engine: Engine, prm, rows: list[dict], grader: str, expansions: int, params: dict,
             seed: int, fmt: PolicyFormat | None = None) -> list[dict]:
    """One record per row (candidates = finished paths, tree with N and Q per node, cost)."""
    if isinstance(expansions, bool) or not isinstance(expansions, int) or expansions < 1:
        raise ValueError(f"MCTS expansions must be a positive integer, got {expansions!r}")
    sp = SearchParams.from_dict(params)
    c = float(params.get("c_puct", params.get("exploration", 1.0)))
    root_k = int(params.get("root_children") or root_children_for(expansions))
    k = int(params.get("children", 2))
    if root_k < 1 or k < 1:
        raise ValueError(f"children per expansion must be positive, got root {root_k}, other {k}")
    trees = start_search(engine, rows, fmt)
    stats = [Stats() for _ in trees]
    by_tree = {id(t): st for t, st in zip(trees, stats)}
    iteration = 0
    while True:
        selected = [(tree, st, select(tree, st, c)) for tree, st in zip(trees, stats)
                    if st.expansions < expansions and None not in st.exhausted]
        if not selected:
            break
        iteration += 1
        new = expand(engine, [(t, leaf, root_k if leaf is None else k) for t, _, leaf in selected], sp,
                     derived_seed(seed, iteration))
        evaluate(prm, new)
        for tree, node in new:
            if node.reward is not None:
                backpropagate(tree, by_tree[id(tree)], node)
        for tree, st, leaf in selected:
            st.expansions += 1
            mark_exhausted(tree, st, leaf)
    return [tree.record(grader, lambda n, st=st: {"visits": st.visits.get(n.id, 0), "value": st.value.get(n.id)})
            for tree, st in zip(trees, stats)]
