"""REBASE, reward balanced search (Wu et al. 2024, Sec. 3.1.2).

Per problem: sample `width` first steps (B_0 = width). At depth i the PRM scores the new nodes; the C_i
completed ones leave the budget (B_i = B_{i-1} - C_i) and become candidates; B_i children are split over the
open nodes of depth i by `allocate` (softmax(R / T_b)) and generated. A problem stops when B_i = 0, when it
has no open node, or at `max_depth` (unfinished nodes there are dropped): it may end with fewer than `width`
candidates, even none.

Dropped nodes (a step cut at `max_step_tokens`, a step ending without a tag, a path over
`max_solution_tokens` as a running total) get no children and keep NO budget slot: B_i only falls by the
completed nodes, so a dropped node's slot goes to its open siblings at the next allocation. Its tokens are
still in `cost.decode`; it is not scored.

Each depth is one engine call for all problems (every (problem, node) prompt repeated once per child, n=1,
seed derived_seed(seed, depth)) and one PRM call for all new nodes.
"""
from __future__ import annotations

from infscale.core.policy_format import PolicyFormat
from infscale.search.engine_base import Engine, derived_seed
from infscale.search.treesearch import (
    ALLOCATION_RULES,
    Node,
    SearchParams,
    Tree,
    allocate,
    evaluate,
    expand,
    start_search,
)


def run_rebase(engine: Engine, prm, rows: list[dict], grader: str, width: int, params: dict, seed: int,
               fmt: PolicyFormat | None = None) -> list[dict]:
    """One record per row (candidates = completed paths, tree, cost); see the module docstring. `fmt`: the
    policy's format (None: the paper's)."""
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"REBASE width must be a positive integer, got {width!r}")
    sp = SearchParams.from_dict(params)
    temperature = float(params.get("balance_temperature", 0.1))
    rule = params.get("allocation", "ceil")
    if rule not in ALLOCATION_RULES:
        raise ValueError(f"allocation must be one of {ALLOCATION_RULES}, got {rule!r}")
    trees = start_search(engine, rows, fmt)
    budgets = [width] * len(trees)
    requests: list[tuple[Tree, Node | None, int]] = [(t, None, width) for t in trees]
    depth = 0
    while requests:
        depth += 1
        new = expand(engine, requests, sp, derived_seed(seed, depth))
        evaluate(prm, new)
        fresh: dict[int, list[Node]] = {}
        for tree, node in new:
            fresh.setdefault(id(tree), []).append(node)
        requests = []
        for i, tree in enumerate(trees):
            nodes = fresh.get(id(tree), [])
            budgets[i] -= sum(n.finished for n in nodes)
            open_nodes = [n for n in nodes if n.open]  # none at max_depth: those are dropped when added
            if budgets[i] == 0 or not open_nodes:
                continue
            widths = allocate([n.reward for n in open_nodes], budgets[i], temperature, rule)
            requests += [(tree, n, w) for n, w in zip(open_nodes, widths) if w > 0]
    return [tree.record(grader) for tree in trees]
