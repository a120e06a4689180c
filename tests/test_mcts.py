"""MCTS with a scripted engine and PRM whose outcomes are known."""
from __future__ import annotations

import math

import pytest
from scripted import LengthPRM, ScriptedEngine, ScriptedPRM

from infscale.core.stepformat import STEP_TAG, format_prompt, is_finished
from infscale.search.engine_base import derived_seed
from infscale.search.mcts import best_child, root_children_for, run_mcts, uct

TAG = STEP_TAG


def step(r, final=False, tokens=5, reason="stop", tag=True):
    text = f" s{r} r={r}" + (" The answer is: 7" if final else "") + (f" {TAG}" if tag else "")
    return text, tokens, reason


ROWS = [{"id": "p0", "question": "What is 3 + 4?", "answer": "7", "level": 2},
        {"id": "p1", "question": "What is 10 - 3?", "answer": "7"}]


def run(step_fn, expansions=8, rows=ROWS, seed=0, **params):
    engine, prm = ScriptedEngine(step_fn), ScriptedPRM()
    return run_mcts(engine, prm, rows, "toy", expansions, params, seed), engine, prm


def never_finishes(q, path, d, i):
    return step(round((derived_seed(q, path, i) % 89) / 89, 3))


def test_uct_hand_example():
    assert uct(0.5, 2, 3, 1.0) == pytest.approx(0.5 + math.sqrt(math.log(3) / 2))
    assert uct(0.9, 0, 3, 1.0) == math.inf
    # parent N = 3: (Q .5, N 2) -> 1.241, (Q .4, N 1) -> 1.448: exploration picks the less visited child
    assert best_child([(0.5, 2), (0.4, 1)], 3, 1.0) == 1
    assert best_child([(0.5, 2), (0.4, 1)], 3, 0.0) == 0  # C = 0: the higher value
    assert best_child([(0.9, 5), (0.1, 0), (0.8, 1)], 6, 1.0) == 1  # an unvisited child first
    assert best_child([(0.3, 1), (0.7, 1), (0.7, 1)], 3, 1.0) == 1  # equal visits: the high value; ties: first


def test_root_children_defaults_and_override():
    assert [root_children_for(e) for e in (8, 32, 33, 64, 65, 128)] == [4, 4, 8, 8, 16, 16]
    for expansions, k in ((32, 4), (64, 8), (128, 16)):
        records, engine, _ = run(never_finishes, expansions=expansions, rows=ROWS[:1])
        assert len(engine.calls[0][0]) == k
        assert sum(n["parent"] is None for n in records[0]["tree"]) == k
    records, engine, _ = run(never_finishes, expansions=3, root_children=3, rows=ROWS[:1])
    assert sum(n["parent"] is None for n in records[0]["tree"]) == 3


def test_expansions_are_respected_and_batched_across_problems():
    records, engine, prm = run(never_finishes, expansions=5)
    assert len(engine.calls) == 5 and len(prm.calls) == 5  # one engine and one PRM call per iteration
    assert [len(p) for p, _ in engine.calls] == [8, 4, 4, 4, 4]  # 2 problems x (4 root children, then 2)
    assert [p.seed for _, p in engine.calls] == [derived_seed(0, i) for i in range(1, 6)]
    assert all(p.n == 1 and p.stop == (TAG,) for _, p in engine.calls)
    for rec in records:
        tree = rec["tree"]
        assert len(tree) == 4 + 2 * 4
        assert sum(n["width"] > 0 for n in tree) == 4  # + the root: 5 expansions
        assert all(n["width"] in (0, 2) for n in tree)
        assert rec["candidates"] == []
        assert len(rec["cost"]["decode"]) == len(tree) and len(rec["cost"]["prm_tokens"]) == len(tree)
        assert [g for _, g in rec["cost"]["decode"]] == [n["tokens"] for n in tree]


def test_back_propagation_keeps_subtree_means():
    records, _, _ = run(never_finishes, expansions=6, rows=ROWS[:1])
    tree = records[0]["tree"]
    kids = {n["id"]: [m for m in tree if m["parent"] == n["id"]] for n in tree}

    def subtree(n):
        return [n] + [x for k in kids[n["id"]] for x in subtree(k)]

    for n in tree:
        values = [m["reward"] for m in subtree(n)]
        assert n["visits"] == len(values)
        assert n["value"] == pytest.approx(sum(values) / len(values))


def test_selection_follows_the_values_by_hand():
    # Root children: rewards .9 .1 .1 .1. N(root) = 4, every child N = 1: UCT .9 + 1.177 wins -> expand node 0.
    # Its children score .2 and .2: Q(0) = (.9+.2+.2)/3 = .433, N(0) = 3, N(root) = 6; UCT(0) = .433 +
    # sqrt(ln 6 / 3) = 1.210; UCT(1) = .1 + sqrt(ln 6) = 1.439 -> expand node 1 next (exploration).
    def fn(q, path, d, i):
        if d == 1:
            return step(0.9 if i == 0 else 0.1)
        return step(0.2)

    records, _, _ = run(fn, expansions=3, rows=ROWS[:1])
    tree = records[0]["tree"]
    assert [n["width"] for n in tree[:4]] == [2, 2, 0, 0]
    assert [n["parent"] for n in tree[4:]] == [0, 0, 1, 1]
    records, _, _ = run(fn, expansions=3, rows=ROWS[:1], c_puct=0.0)  # pure exploitation stays on node 0
    assert [n["parent"] for n in records[0]["tree"][4:]] == [0, 0, 4, 4]


def test_finished_nodes_are_terminal_candidates():
    # Sibling 0 of every expansion finishes; finished nodes are never expanded.
    def fn(q, path, d, i):
        return step(0.95 if i == 0 else 0.3 + d / 100, final=(i == 0))

    records, engine, prm = run(fn, expansions=6)
    for rec in records:
        tree = rec["tree"]
        finished = [n for n in tree if n["finished"]]
        assert len(rec["candidates"]) == len(finished) == 6  # one per expansion
        assert all(n["width"] == 0 for n in finished)
        for c, n in zip(rec["candidates"], finished):
            assert is_finished(c["text"]) and c["answer"] == "7" and c["text"].endswith(n["text"])
            assert c["step_scores"] == ScriptedPRM().score([rec["question"]], [c["text"]])[0][0]
            assert c["step_scores"][-1] == n["reward"] and len(c["step_scores"]) == n["depth"]


def test_search_stops_when_every_path_is_terminal():
    records, engine, _ = run(lambda q, path, d, i: step(0.5, final=True), expansions=32)
    assert len(engine.calls) == 1
    assert [len(r["candidates"]) for r in records] == [4, 4]
    # Truncated and tag-less steps are terminal too, unscored, with their tokens in the cost.
    records, engine, prm = run(lambda q, path, d, i: step(0.5, tag=False, reason="length", tokens=256),
                               expansions=32)
    assert len(engine.calls) == 1 and prm.calls == []
    assert records[0]["cost"] == {"decode": [[5, 256]] * 4, "prm_tokens": []}
    assert all(n["dropped"] and n["visits"] == 0 for n in records[0]["tree"])


def test_depth_cap_and_solution_tokens():
    records, engine, _ = run(never_finishes, expansions=32, rows=ROWS[:1], max_depth=2)
    tree = records[0]["tree"]
    assert max(n["depth"] for n in tree) == 2
    assert all(n["drop_reason"] == "depth" for n in tree if n["depth"] == 2)
    assert len(engine.calls) == 1 + 4  # the root, then each of its 4 children once; then all is exhausted
    records, _, _ = run(lambda q, path, d, i: step(0.5, final=(d == 3), tokens=10), expansions=32, rows=ROWS[:1],
                        max_solution_tokens=25)
    assert records[0]["candidates"] == []
    assert {n["drop_reason"] for n in records[0]["tree"] if n["depth"] == 3} == {"solution_tokens"}


def test_nan_reward_is_a_clear_error():
    with pytest.raises(ValueError, match=r"problem 'p0', node 1 \(depth 1\).*NaN"):
        run(lambda q, path, d, i: step("nan" if i == 1 and "3 + 4" in q else 0.5))


def test_deterministic_for_a_seed_and_record_format():
    a, _, _ = run(never_finishes, expansions=7)
    b, _, _ = run(never_finishes, expansions=7)
    assert a == b
    rec = a[0]
    assert {k for k in rec} == {"id", "question", "reference", "level", "prompt_tokens", "candidates", "tree", "cost"}
    assert rec["reference"] == "7" and rec["level"] == 2 and a[1]["level"] is None
    assert rec["prompt_tokens"] == len(format_prompt(ROWS[0]["question"]).split())
    with pytest.raises(ValueError, match="expansions"):
        run(never_finishes, expansions=0)


def test_real_engine_same_seed_same_tree(tagging_policy_dir):
    from infscale.search.engines import TransformersEngine

    engine = TransformersEngine(str(tagging_policy_dir), batch_size=8)

    rows = [{"id": "a", "question": "Tom has 3 apples and buys 4 more.", "answer": "7"},
            {"id": "b", "question": "Ann has 9 pens and gives away 2.", "answer": "7"}]
    params = {"max_step_tokens": 12, "max_solution_tokens": 48, "max_depth": 4}
    first = run_mcts(engine, LengthPRM(), rows, "toy", 6, params, seed=3)
    again = run_mcts(engine, LengthPRM(), rows, "toy", 6, params, seed=3)
    other = run_mcts(engine, LengthPRM(), rows, "toy", 6, params, seed=4)
    assert first == again
    assert [r["tree"] for r in first] != [r["tree"] for r in other]
    for rec in first:
        assert rec["prompt_tokens"] > 0 and len(rec["cost"]["decode"]) == len(rec["tree"])
        assert len(rec["tree"]) <= 4 + 2 * 5
        assert sum(n["parent"] is None for n in rec["tree"]) == 4


def test_uct_without_parent_visits_has_no_exploration_bonus():
    # ln N(parent) is 0 for a parent with one value (and guarded for none): the value alone ranks the child.
    assert uct(0.4, 1, 1, 1.0) == 0.4
    assert uct(0.4, 1, 0, 1.0) == 0.4
    assert uct(0.4, 2, 2, 2.0) == pytest.approx(0.4 + 2.0 * math.sqrt(math.log(2) / 2))


def test_selection_uses_each_parents_own_visit_count():
    # Root (N 20): A (Q .74, N 5) and B (Q .1, N 15); A's children C (Q .9, N 3, children F and G) and D (Q .2, N 1).
    # At the root: UCT(A) = .74 + sqrt(ln 20 / 5) = 1.51 > UCT(B) = .55. At A, with N(A) = 5: UCT(C) = .9 +
    # sqrt(ln 5 / 3) = 1.63 > UCT(D) = .2 + sqrt(ln 5) = 1.47 (with the root's N 20 instead, D would win:
    # 1.90 < 1.93). At C: F and G tie (Q .9, N 1) -> the first, F.
    from types import SimpleNamespace

    from infscale.search.mcts import Stats, select

    a, b, c, d, f, g = (SimpleNamespace(id=i) for i in range(6))
    tree = SimpleNamespace(children={None: [a, b], 0: [c, d], 2: [f, g]})
    st = Stats(visits={None: 20, 0: 5, 1: 15, 2: 3, 3: 1, 4: 1, 5: 1},
               value={None: 0.3, 0: 0.74, 1: 0.1, 2: 0.9, 3: 0.2, 4: 0.9, 5: 0.9})
    assert select(tree, st, 1.0) is f
    st.exhausted |= {2}  # C exhausted: selection goes to D, A's other child
    assert select(tree, st, 1.0) is d
    assert select(SimpleNamespace(children={}), Stats(), 1.0) is None  # nothing expanded yet: the root


def test_exploration_constant_default_and_alias():
    # Root children .9 .1 .1 .1; node 0's children score .8: Q(0) = (.9 + .8 + .8) / 3 = .833, N(0) = 3, N(root) =
    # 6. UCT(0) - UCT(1) = .733 - C * (sqrt(ln 6) - sqrt(ln 6 / 3)) = .733 - .567 C: with the default C = 1, node 0
    # again (its child 4 expanded next); with C = 2, node 1.
    def fn(q, path, d, i):
        return step(0.9 if d == 1 and i == 0 else 0.1 if d == 1 else 0.8)

    parents = lambda records: [n["parent"] for n in records[0]["tree"][4:]]  # noqa: E731
    assert parents(run(fn, expansions=3, rows=ROWS[:1])[0]) == [0, 0, 4, 4]
    assert parents(run(fn, expansions=3, rows=ROWS[:1], exploration=2.0)[0]) == [0, 0, 1, 1]
    assert parents(run(fn, expansions=3, rows=ROWS[:1], c_puct=2.0, exploration=0.0)[0]) == [0, 0, 1, 1]


def test_children_per_expansion_and_a_single_expansion():
    records, engine, _ = run(never_finishes, expansions=3, rows=ROWS[:1], root_children=2, children=3)
    assert [len(p) for p, _ in engine.calls] == [2, 3, 3]
    assert len(records[0]["tree"]) == 2 + 3 * 2
    records, engine, _ = run(never_finishes, expansions=1, rows=ROWS[:1])  # the root only
    assert len(engine.calls) == 1 and len(records[0]["tree"]) == 4
    records, engine, _ = run(never_finishes, expansions=3, rows=ROWS[:1], root_children=1, children=1)  # a chain
    assert [n["depth"] for n in records[0]["tree"]] == [1, 2, 3]


@pytest.mark.parametrize("params", [{"children": 0}, {"root_children": -1}, {"root_children": 2, "children": -2}])
def test_non_positive_children_are_refused(params):
    with pytest.raises(ValueError, match="children per expansion must be positive"):
        run(never_finishes, expansions=2, rows=ROWS[:1], **params)


@pytest.mark.parametrize("expansions", [True, 2.0, -1])
def test_expansions_must_be_a_positive_int(expansions):
    with pytest.raises(ValueError, match="expansions must be a positive integer"):
        run(never_finishes, expansions=expansions, rows=ROWS[:1])
