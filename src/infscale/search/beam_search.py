"""Beam search with a PRM (Snell et al. 2024; huggingface/search-and-learn, sal/search/beam_search.py).

Per problem, budget N and beam width M (`beam_width`, M divides N): sample N first steps. At each depth the PRM
scores the new nodes (a node's reward is its last step's score, search-and-learn's `agg_strategy: last`);
finished nodes leave the beam and become candidates; among the open new nodes the N/M with the highest reward
(ties: the earlier node) are kept and each is expanded M times, the others are pruned. A problem stops when N of
its paths have finished, when no new node is open, or at `max_depth` (unfinished nodes there are dropped): it may
end with fewer than N candidates, or with more (every finished path of the last depth is kept).

`groups` splits each problem into independent subtrees (DVTS, dvts.py): the N first steps are dealt in order to
`groups` subtrees of N/groups each, and every subtree is a beam search of its own with budget N/groups, keeping
its (N/groups)/M best open nodes; a subtree never sees another's rewards. Beam search is one group.

Dropped nodes (see treesearch) are never kept. Each depth is one engine call for all problems and subtrees
(seed derived_seed(seed, depth)) and one PRM call for all new nodes, as in REBASE.
"""
from __future__ import annotations

from infscale.core.config import DEFAULT_BEAM_WIDTH
from infscale.core.policy_format import PolicyFormat
from infscale.search.engine_base import Engine, derived_seed
from infscale.search.treesearch import Node, SearchParams, Tree, evaluate, expand, start_search


def beam_width(strategy: str, n: int, params: dict) -> int:
    """M of a beam search or DVTS at budget n, checked: a positive integer dividing n."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{strategy} budget must be a positive integer, got {n!r}")
    m = params.get("beam_width", DEFAULT_BEAM_WIDTH)
    key = f"strategies.{strategy}.beam_width"
    if isinstance(m, bool) or not isinstance(m, int) or m < 1:
        raise ValueError(f"config key {key}: must be a positive integer, got {m!r}")
    if n % m:
        raise ValueError(f"config key {key}: {m} does not divide the budget {n} (strategies.{strategy}.budgets); "
                         f"every budget must be a multiple of the beam width")
    return m


def keep_best(nodes: list[Node], k: int) -> list[Node]:
    """The k open nodes with the highest reward (ties: the earlier node), in node order."""
    ranked = sorted((n for n in nodes if n.open), key=lambda n: -n.reward)  # stable: ties keep node order
    return sorted(ranked[:k], key=lambda n: n.id)


def run_beam_search(engine: Engine, prm, rows: list[dict], grader: str, n: int, params: dict, seed: int, *,
                    groups: int = 1, strategy: str = "beam_search", fmt: PolicyFormat | None = None) -> list[dict]:
    """One record per row (candidates = finished paths, tree with each node's subtree, cost); see the module
    docstring. `strategy` names the config block in errors."""
    m = beam_width(strategy, n, params)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or n % groups or (n // groups) % m:
        raise ValueError(f"{strategy}: {groups} subtrees do not split budget {n} into multiples of the beam width {m}")
    sp = SearchParams.from_dict(params)
    budget = n // groups  # paths a subtree may finish
    kept = budget // m  # nodes a subtree expands at each depth
    trees = start_search(engine, rows, fmt)
    subtree: dict[int, list[int]] = {id(t): [] for t in trees}  # per tree, the subtree of each node id
    finished = {(id(t), g): 0 for t in trees for g in range(groups)}
    requests: list[tuple[Tree, Node | None, int]] = [(t, None, n) for t in trees]
    depth = 0
    while requests:
        depth += 1
        new = expand(engine, requests, sp, derived_seed(seed, depth))
        evaluate(prm, new)
        fresh: dict[tuple[int, int], list[tuple[Tree, Node]]] = {}
        for tree, node in new:
            of = subtree[id(tree)]
            g = len(of) // budget if node.parent is None else of[node.parent]  # first steps dealt in order
            of.append(g)
            fresh.setdefault((id(tree), g), []).append((tree, node))
        requests = []
        for (key, items) in fresh.items():
            finished[key] += sum(node.finished for _, node in items)
            if finished[key] >= budget:
                continue
            tree = items[0][0]
            requests += [(tree, node, m) for node in keep_best([node for _, node in items], kept)]
    return [tree.record(grader, lambda node, of=subtree[id(tree)]: {"subtree": of[node.id]}) for tree in trees]
