"""REBASE and the shared allocation, with a scripted engine and PRM whose outcomes are known."""
from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scripted import ScriptedEngine, ScriptedPRM

from infscale.core.stepformat import STEP_TAG, format_prompt, is_finished
from infscale.search.engine_base import derived_seed
from infscale.search.rebase import run_rebase
from infscale.search.treesearch import allocate

TAG = STEP_TAG


def step(r, final=False, tokens=5, reason="stop", tag=True):
    text = f" d r={r}" + (" The answer is: 7" if final else "") + (f" {TAG}" if tag else "")
    return text, tokens, reason


ROWS = [{"id": "p0", "question": "What is 3 + 4?", "answer": "7", "level": 1},
        {"id": "p1", "question": "What is 10 - 3?", "answer": "7"}]


def run(step_fn, width=4, rows=ROWS, seed=0, **params):
    engine, prm = ScriptedEngine(step_fn), ScriptedPRM()
    return run_rebase(engine, prm, rows, "toy", width, params, seed), engine, prm


# ---------------------------------------------------------------- allocate


def authors_select_softmax(rewards, width, temperature):
    """thu-wyz/inference_scaling rebase.py select_softmax, re-typed without torch: sort ascending, reverse,
    then each node in turn takes ceil(width * w / sum) and leaves the width and weight sum to the rest.
    In exact arithmetic: in floats the weight left for the last node can fall a few ulps below its own weight,
    and ceil then gives it one child more than the width left (15% of these random inputs in float64)."""
    pairs = sorted(enumerate(rewards), key=lambda p: p[1])
    pairs.reverse()
    weights = [Fraction(math.exp(r / temperature)) for _, r in pairs]
    total, out = sum(weights), [0] * len(rewards)
    for (j, _), w in zip(pairs, weights):
        num = int(math.ceil(width * w / total))
        out[j] = num
        width -= num
        total -= w
    return out


def test_allocate_is_the_authors_rule_on_the_worked_example():
    rewards = [0.7121, 0.5644, 0.619, 0.4964, 0.5317, 0.7772, 0.4656, 0.9234, 0.3616]
    assert allocate(rewards, 32, 0.1, "ceil") == [3, 1, 1, 0, 0, 5, 0, 22, 0]
    assert authors_select_softmax(rewards, 32, 0.1) == [3, 1, 1, 0, 0, 5, 0, 22, 0]


def test_allocate_agrees_with_the_authors_rule_on_1000_random_inputs():
    rng = random.Random(2408_00724)
    for _ in range(1000):
        rewards = [rng.random() for _ in range(rng.randint(1, 24))]
        width, temperature = rng.randint(1, 128), rng.choice([0.1, 0.2, 0.5, 1.0, rng.uniform(0.05, 2)])
        widths = allocate(rewards, width, temperature, "ceil")
        assert widths == authors_select_softmax(rewards, width, temperature), (rewards, width, temperature)
        assert sum(widths) == width
        by_reward = [widths[j] for j in sorted(range(len(rewards)), key=lambda j: -rewards[j])]
        assert by_reward == sorted(by_reward, reverse=True)  # a higher reward never gets fewer children


def test_allocate_hand_examples():
    assert allocate([0.9, 0.5, 0.1], 4, 0.1, "ceil") == [4, 0, 0]
    # T=1: p = .472 .316 .212 -> shares 1.89 1.26 .85
    assert allocate([0.9, 0.5, 0.1], 4, 1.0, "ceil") == [2, 2, 0]
    assert allocate([0.9, 0.5, 0.1], 4, 1.0, "round") == [2, 1, 1]
    assert allocate([0.1, 0.5, 0.9], 4, 1.0, "ceil") == [0, 2, 2]  # order of the input is kept


@pytest.mark.parametrize("rule", ["ceil", "round"])
def test_allocate_edge_cases(rule):
    assert allocate([0.3] * 4, 8, 0.1, rule) == [2, 2, 2, 2]  # all equal: an exact even split
    assert allocate([0.3] * 3, 3, 0.1, rule) == [1, 1, 1]
    # budget < nodes: the authors' order serves the later of equal nodes first; Round's tie-break the earlier
    assert allocate([0.3] * 5, 2, 0.1, rule) == ([0, 0, 0, 1, 1] if rule == "ceil" else [1, 1, 0, 0, 0])
    assert allocate([0.42], 5, 0.1, rule) == [5]  # one node
    assert allocate([0.0, 1.0], 4, 0.1, rule) == [0, 4]  # rewards 0 and 1 at T_b = 0.1
    assert allocate([0.0, 1.0], 4, 1.0, rule)[1] >= 2
    assert allocate([0.5, 0.9, 0.9], 4, 0.0, rule) == [0, 0, 4]  # T_b = 0: the best served first takes all
    assert allocate([0.2, 0.7], 0, 0.1, rule) == [0, 0]
    assert allocate([], 0, 0.1, rule) == []


def test_allocate_rejects_bad_input():
    with pytest.raises(ValueError, match="finite"):
        allocate([0.5, math.nan], 4, 0.1)
    with pytest.raises(ValueError, match="rule"):
        allocate([0.5], 4, 0.1, "floor")
    with pytest.raises(ValueError, match="budget"):
        allocate([0.5], -1, 0.1)
    with pytest.raises(ValueError, match="no node"):
        allocate([], 3, 0.1)
    with pytest.raises(ValueError, match="temperature"):
        allocate([0.5], 3, -1.0)


rewards_st = st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=24)


@settings(max_examples=300, deadline=None)
@given(rewards_st, st.integers(0, 128), st.floats(1e-3, 10), st.sampled_from(["ceil", "round"]))
def test_allocate_conserves_budget_and_is_monotone(rewards, budget, temperature, rule):
    widths = allocate(rewards, budget, temperature, rule)
    assert len(widths) == len(rewards)
    assert all(isinstance(w, int) and w >= 0 for w in widths)
    assert sum(widths) == budget
    for i, ri in enumerate(rewards):
        for j, rj in enumerate(rewards):
            if ri > rj:
                assert widths[i] >= widths[j], (rewards, widths)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 100), min_size=1, max_size=16), st.integers(1, 128), st.sampled_from(["ceil", "round"]))
def test_allocate_zero_temperature_limit_gives_all_to_the_best(grid, budget, rule):
    rewards = [g / 100 for g in grid]
    assume(rewards.count(max(rewards)) == 1)
    best = rewards.index(max(rewards))
    widths = allocate(rewards, budget, 1e-6, rule)
    assert widths[best] == budget


# ---------------------------------------------------------------- REBASE


def test_every_node_completes_at_depth_one():
    records, engine, prm = run(lambda q, path, d, i: step(0.5 + i / 10, final=True))
    assert len(engine.calls) == 1 and len(prm.calls) == 1
    prompts, params = engine.calls[0]
    assert prompts == [format_prompt(r["question"]) for r in ROWS for _ in range(4)]
    assert params.n == 1 and params.stop == (TAG,) and params.max_new_tokens == 256
    assert params.seed == derived_seed(0, 1) and params.temperature == 1.0
    for rec, row in zip(records, ROWS):
        assert rec["id"] == row["id"] and rec["reference"] == "7" and rec["level"] == row.get("level")
        assert rec["prompt_tokens"] == len(format_prompt(row["question"]).split())
        assert len(rec["candidates"]) == 4 and len(rec["tree"]) == 4
        for k, c in enumerate(rec["candidates"]):
            assert c["answer"] == "7" and c["finish_reason"] == "stop" and c["tokens"] == 5
            assert c["step_scores"] == [0.5 + k / 10]
            assert c["prm_tokens"] == len(format_prompt(row["question"]) + c["text"])
        assert all(n["finished"] and not n["dropped"] and n["width"] == 0 for n in rec["tree"])


def test_nothing_completes_before_the_depth_cap():
    records, engine, _ = run(lambda q, path, d, i: step(0.5), max_depth=3)
    assert len(engine.calls) == 3
    assert [len(p) for p, _ in engine.calls] == [8, 8, 8]  # the budget stays 4 per problem
    for rec in records:
        assert rec["candidates"] == []
        deepest = [n for n in rec["tree"] if n["depth"] == 3]
        assert len(deepest) == 4 and all(n["dropped"] and n["drop_reason"] == "depth" for n in deepest)
        assert all(n["reward"] == 0.5 for n in rec["tree"])  # capped nodes are still scored
        assert len(rec["cost"]["decode"]) == 12


def test_one_engine_call_per_depth_and_completed_nodes_leave_the_budget():
    # Sibling 0 finishes at every depth; the others stay open. Budget 4 -> 3 -> 2 -> 1 -> 0.
    records, engine, prm = run(lambda q, path, d, i: step(0.5, final=(i == 0)))
    assert [len(p) for p, _ in engine.calls] == [8, 6, 4, 2]
    assert [p.seed for _, p in engine.calls] == [derived_seed(0, d) for d in (1, 2, 3, 4)]
    assert len(prm.calls) == 4
    for rec in records:
        assert [c["text"].count(TAG) for c in rec["candidates"]] == [1, 2, 3, 4]
        assert all(is_finished(c["text"]) for c in rec["candidates"])


def test_budget_follows_the_rewards():
    # At depth 1 sibling 0 has reward 0.9, the others 0.1: at T_b = 0.1 all 4 children go to sibling 0.
    def fn(q, path, d, i):
        return step(0.9 if i == 0 else 0.1) if d == 1 else step(0.6, final=True)

    records, engine, _ = run(fn)
    tree = records[0]["tree"]
    assert [n["width"] for n in tree if n["depth"] == 1] == [4, 0, 0, 0]
    assert all(n["parent"] == 0 for n in tree if n["depth"] == 2)
    assert len(records[0]["candidates"]) == 4
    assert [c["step_scores"] for c in records[0]["candidates"]] == [[0.9, 0.6]] * 4
    # A high balance temperature spreads the budget: Round gives 1 child each; ceil lets the best node win
    # the rounding (1.002 -> 2) and the one served last gets none.
    records, _, _ = run(fn, balance_temperature=100.0, allocation="round")
    assert [n["width"] for n in records[0]["tree"] if n["depth"] == 1] == [1, 1, 1, 1]
    records, _, _ = run(fn, balance_temperature=100.0)  # equal rewards: the authors serve the later node first
    assert [n["width"] for n in records[0]["tree"] if n["depth"] == 1] == [2, 0, 1, 1]


def _mixed(q, path, d, i):
    """Rewards vary with the path; some steps finish, some are cut at the step limit."""
    h = derived_seed(q, path, i)
    r = round((h % 97) / 97, 3)
    if d >= 2 and h % 3 == 0:
        return step(r, final=True, tokens=3 + h % 5)
    if h % 7 == 0:
        return step(r, tokens=9, reason="length", tag=False)
    return step(r, tokens=3 + h % 5)


def test_cost_and_step_scores_cover_every_node():
    records, engine, prm = run(_mixed, width=8, max_depth=6)
    assert sum(len(r["cost"]["decode"]) for r in records) == sum(len(p) for p, _ in engine.calls)
    assert sum(len(r["cost"]["prm_tokens"]) for r in records) == sum(len(s) for s in prm.calls)
    for rec in records:
        tree = rec["tree"]
        assert len(rec["cost"]["decode"]) == len(tree)  # one pair per generated node, dropped ones included
        assert [g for _, g in rec["cost"]["decode"]] == [n["tokens"] for n in tree]
        assert any(n["drop_reason"] == "length" for n in tree) and rec["candidates"]
        by_id = {n["id"]: n for n in tree}
        finished = [n for n in tree if n["finished"]]  # candidates come in the order of their nodes
        assert len(finished) == len(rec["candidates"])
        for c, leaf in zip(rec["candidates"], finished):
            path = _path(by_id, leaf)
            assert c["text"] == "".join(n["text"] for n in path)
            assert c["tokens"] == sum(n["tokens"] for n in path)
            assert c["step_scores"] == [n["reward"] for n in path]  # the rewards scored during the search
            assert c["step_scores"] == ScriptedPRM().score([rec["question"]], [c["text"]])[0][0]
        for n in tree:
            assert (n["reward"] is None) == (n["drop_reason"] in ("length", "no_tag", "solution_tokens"))
            if n["dropped"] or n["finished"]:
                assert n["width"] == 0
        # the context of a node: the prompt and its parent's path, as the engine counted them
        for n, (ctx, _) in zip(tree, rec["cost"]["decode"]):
            above = "" if n["parent"] is None else "".join(m["text"] for m in _path(by_id, by_id[n["parent"]]))
            assert ctx == len((format_prompt(rec["question"]) + above).split())


def _path(by_id, node):
    out = [node]
    while out[-1]["parent"] is not None:
        out.append(by_id[out[-1]["parent"]])
    return out[::-1]


def test_truncated_nodes_keep_no_slot_and_get_no_children():
    # At depth 1 siblings 0 and 1 hit the step limit; 2 and 3 stay open and share the whole budget of 4.
    def fn(q, path, d, i):
        if d == 1:
            return step(0.5, reason="length", tag=False, tokens=256) if i < 2 else step(0.5)
        return step(0.5, final=True)

    records, engine, prm = run(fn, rows=ROWS[:1])
    tree = records[0]["tree"]
    assert [n["drop_reason"] for n in tree[:4]] == ["length", "length", None, None]
    assert [n["width"] for n in tree[:4]] == [0, 0, 2, 2]
    assert len(records[0]["candidates"]) == 4
    assert len(prm.calls[0]) == 2  # the truncated steps are not scored
    assert records[0]["cost"]["decode"][:2] == [[5, 256], [5, 256]]  # "What is 3 + 4?" is 5 words


def test_ending_without_a_tag_or_answer_is_dropped():
    records, _, _ = run(lambda q, path, d, i: step(0.5, tag=False), rows=ROWS[:1])
    assert [n["drop_reason"] for n in records[0]["tree"]] == ["no_tag"] * 4
    assert records[0]["candidates"] == []


def test_max_solution_tokens_is_a_running_total():
    # 10 tokens a step, well under max_step_tokens; the answer comes at depth 3 (30 tokens in all).
    def fn(q, path, d, i):
        return step(0.5, final=(d == 3), tokens=10)

    records, engine, _ = run(fn, rows=ROWS[:1], max_solution_tokens=25)
    assert records[0]["candidates"] == []
    assert {n["drop_reason"] for n in records[0]["tree"] if n["depth"] == 3} == {"solution_tokens"}
    assert len(engine.calls) == 3
    records, _, _ = run(fn, rows=ROWS[:1], max_solution_tokens=30)
    assert [c["tokens"] for c in records[0]["candidates"]] == [30] * 4


def test_one_node_and_all_rewards_equal():
    records, engine, _ = run(lambda q, path, d, i: step(0.5, final=(d == 3)), width=1)
    assert [len(p) for p, _ in engine.calls] == [2, 2, 2]
    assert [len(r["candidates"]) for r in records] == [1, 1]
    for rule in ("ceil", "round"):
        records, _, _ = run(lambda q, path, d, i: step(0.3, final=(d == 2)), width=4, allocation=rule)
        assert [n["width"] for n in records[0]["tree"] if n["depth"] == 1] == [1, 1, 1, 1]


def test_nan_reward_is_a_clear_error():
    with pytest.raises(ValueError, match=r"problem 'p1', node 2 \(depth 1\).*NaN"):
        run(lambda q, path, d, i: step("nan" if (q.startswith("What is 10") and i == 2) else 0.5))


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        run(lambda q, path, d, i: step(0.5), width=0)
    with pytest.raises(ValueError, match="allocation"):
        run(lambda q, path, d, i: step(0.5), allocation="nearest")


def test_deterministic_for_a_seed():
    a, _, _ = run(_mixed, width=8, max_depth=6)
    b, _, _ = run(_mixed, width=8, max_depth=6)
    assert a == b


@pytest.mark.parametrize("width", [True, 2.0, 0, -1])
def test_width_must_be_a_positive_integer(width):
    with pytest.raises(ValueError, match="REBASE width must be a positive integer"):
        run(lambda q, path, d, i: step(0.5, final=True), width=width)


def test_a_problem_that_finishes_early_does_not_stop_the_others():
    # p0 finishes every node at depth 1; p1 needs a second step: the loop over problems must go on past p0.
    def fn(q, path, d, i):
        return step(0.5, final=(q == "What is 3 + 4?" or d == 2))

    records, engine, _ = run(fn)
    assert len(engine.calls) == 2
    assert [len(r["candidates"]) for r in records] == [4, 4]
    assert max(n["depth"] for n in records[1]["tree"]) == 2
