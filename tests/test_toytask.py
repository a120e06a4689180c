from hypothesis import given
from hypothesis import strategies as st

from infscale.core import toytask
from infscale.core.grading import extract_answer, is_correct
from infscale.core.stepformat import STEP_TAG, split_steps


@given(st.integers(0, 10_000), st.integers(1, 5))
def test_solution_steps_are_correct_arithmetic(seed, level):
    import random

    row = toytask.make_problem(random.Random(seed), level)
    steps = split_steps(row["solution"])
    assert len(steps) == level + 1  # one step per operation, then the answer line
    value = None
    for step in steps[:-1]:
        body = step.split(":", 1)[1].replace(STEP_TAG, "").strip()
        lhs, rhs = body.split("=")
        a, op, b = lhs.split()
        if value is not None:
            assert int(a) == value  # each step continues from the previous result
        value = int(a) + int(b) if op == "+" else int(a) - int(b)
        assert value == int(rhs) and value >= 0
    assert row["answer"] == str(value)
    assert is_correct(extract_answer(row["solution"], "toy"), row["answer"], "toy")


def test_splits_are_seeded_disjoint_and_cover_levels():
    a = toytask.make_splits(300, 20, 50, seed=3)
    b = toytask.make_splits(300, 20, 50, seed=3)
    assert a == b
    assert toytask.make_splits(300, 20, 50, seed=4)["test"] != a["test"]
    test_q = {r["question"] for r in a["test"]}
    assert not test_q & {r["question"] for r in a["train"]}
    assert not test_q & {r["question"] for r in a["prm"]}
    assert {r["level"] for r in a["test"]} == {1, 2, 3, 4, 5}
    assert [len(a[s]) for s in ("train", "prm", "test")] == [300, 20, 50]


def _crossings(rows):
    """Steps whose result leaves the tens digit of the value they start from."""
    out = []
    for r in rows:
        for step in split_steps(r["solution"])[:-1]:
            lhs, rhs = step.split(":", 1)[1].replace(STEP_TAG, "").split("=")
            out.append(int(lhs.split()[0]) // 10 != int(rhs) // 10)
    return out


def test_carry_rate_controls_tens_crossings():
    assert not any(_crossings(toytask.make_split(300, 0, carry_rate=0.0)))
    some = _crossings(toytask.make_split(300, 0, carry_rate=0.5))
    assert 0.3 < sum(some) / len(some) < 0.7
    always = _crossings(toytask.make_split(300, 0, carry_rate=1.0))
    assert sum(always) / len(always) > 0.95  # all but the rare value where no operation can cross


def _steps(text):
    return [s for s in split_steps(text) if s.strip()]


@given(st.integers(0, 10_000), st.integers(1, 5))
def test_reference_solutions_have_no_wrong_step(seed, level):
    import random

    row = toytask.make_problem(random.Random(seed), level)
    steps = _steps(row["solution"])
    assert toytask.first_wrong_step(row["question"], steps) is None
    assert toytask.exact_step_labels(row["question"], steps) == [1.0] * len(steps)


def test_first_wrong_step_finds_arithmetic_operand_and_answer_errors():
    q = "Compute 40 + 3 - 8 + 2."
    good = ["Step 1: 40 + 3 = 43 ки", "\nStep 2: 43 - 8 = 35 ки", "\nStep 3: 35 + 2 = 37 ки", "\nThe answer is: 37 ки"]
    assert toytask.first_wrong_step(q, good) is None
    arithmetic = good[:1] + ["\nStep 2: 43 - 8 = 36 ки", "\nStep 3: 36 + 2 = 38 ки", "\nThe answer is: 38 ки"]
    assert toytask.first_wrong_step(q, arithmetic) == 1
    assert toytask.exact_step_labels(q, arithmetic) == [1.0, 0.0, 0.0, 0.0]  # wrong stays wrong after the error
    operand = ["Step 1: 40 + 4 = 44 ки"] + good[1:]
    assert toytask.first_wrong_step(q, operand) == 0
    carried = good[:1] + ["\nStep 2: 44 - 8 = 36 ки"] + good[2:]  # right arithmetic on the wrong value
    assert toytask.first_wrong_step(q, carried) == 1
    assert toytask.first_wrong_step(q, good[:3] + ["\nThe answer is: 38 ки"]) == 3
    assert toytask.first_wrong_step(q, good[:2] + ["\nThe answer is: 35 ки"]) == 2  # answered too early
    assert toytask.first_wrong_step(q, good[:3]) == 3  # stopped before the answer line
    assert toytask.first_wrong_step(q, ["Step 1: forty ки"] + good[1:]) == 0


def test_parse_question_rejects_other_text():
    import pytest

    assert toytask.parse_question("Compute 56 - 5 + 3.") == (56, [("-", 5), ("+", 3)])
    with pytest.raises(ValueError, match="not a toy question"):
        toytask.parse_question("What is 2 + 2?")


# Several solution paths (issue 19): random orders, carry-free in every order, the order-aware checker.

def _ops_of(solution):
    out = []
    for step in split_steps(solution)[:-1]:
        a, op, b = step.split(":", 1)[1].split("=")[0].split()
        out.append((op, int(b)))
    return out


@given(st.integers(0, 10_000), st.integers(1, 5))
def test_every_order_questions_carry_in_no_order(seed, level):
    import itertools
    import random

    row = toytask.make_problem(random.Random(seed), level, 0.0, "random", "every_order")
    start, ops = toytask.parse_question(row["question"])
    assert len(ops) == level
    for order in itertools.permutations(ops):
        assert not toytask.carries(start, order), (row["question"], order)


@given(st.integers(0, 10_000), st.integers(1, 5), st.sampled_from(["question_order", "every_order"]))
def test_random_order_solutions_are_right_permutations_without_carries(seed, level, carry_free):
    import random

    row = toytask.make_problem(random.Random(seed), level, 0.0, "random", carry_free, solutions=3)
    start, ops = toytask.parse_question(row["question"])
    assert len(row["solutions"]) == 3 and row["solution"] == row["solutions"][0]
    for text in row["solutions"]:
        assert sorted(_ops_of(text)) == sorted(ops)  # the question's operations, each once, in some order
        assert not toytask.carries(start, _ops_of(text))
        assert toytask.first_wrong_step(row["question"], _steps(text)) is None
        assert extract_answer(text, "toy") == row["answer"]  # the answer does not depend on the order


def test_random_orders_vary_and_question_order_is_kept_by_default():
    import random

    rng = random.Random(1)
    rows = [toytask.make_problem(rng, 4, 0.0, "random", "every_order") for _ in range(200)]
    in_question_order = [_ops_of(r["solution"]) == toytask.parse_question(r["question"])[1] for r in rows]
    assert 0 < sum(in_question_order) < 100  # most level-4 solutions take another order
    fixed = toytask.make_problem(random.Random(1), 4, 0.0)
    assert _ops_of(fixed["solution"]) == toytask.parse_question(fixed["question"])[1]


def test_several_solutions_per_question_take_distinct_orders_in_the_train_split_only():
    splits = toytask.make_splits(300, 10, 20, seed=0, carry_rate=0.0, order="random", carry_free="every_order",
                                 solutions_per_question=3)
    from collections import defaultdict

    by_question = defaultdict(list)
    for r in splits["train"]:
        by_question[r["question"]].append(r["solution"])
    assert len(splits["train"]) == 300 and len(by_question) < 120  # about 100 draws of 3 (a draw may repeat)
    multi = [v for q, v in by_question.items() if len(v) >= 3 and q.count(" ") >= 6]  # level >= 3: 6+ orders
    assert multi and sum(len(set(v)) >= 3 for v in multi) / len(multi) > 0.9
    assert len({r["id"] for r in splits["train"]}) == 300
    for r in splits["test"] + splits["prm"]:  # graded by the answer; the reference keeps the question's order
        assert _ops_of(r["solution"]) == toytask.parse_question(r["question"])[1]


def test_every_order_needs_carry_rate_zero_and_known_names():
    import random

    import pytest

    with pytest.raises(ValueError, match="carry_rate must be 0"):
        toytask.make_problem(random.Random(0), 3, 0.5, "random", "every_order")
    with pytest.raises(ValueError, match="toy order"):
        toytask.make_problem(random.Random(0), 3, 0.0, "sorted")
    with pytest.raises(ValueError, match="toy carry_free"):
        toytask.make_problem(random.Random(0), 3, 0.0, "random", "never")


def test_order_aware_checker_accepts_any_order_of_the_questions_operations():
    q = "Compute 40 + 3 - 2 + 4."
    reordered = ["Step 1: 40 + 4 = 44 ки", "\nStep 2: 44 - 2 = 42 ки", "\nStep 3: 42 + 3 = 45 ки", "\nThe answer is: 45 ки"]
    assert toytask.first_wrong_step(q, reordered) is None
    used_twice = ["Step 1: 40 + 4 = 44 ки", "\nStep 2: 44 + 4 = 48 ки", "\nStep 3: 48 - 2 = 46 ки",
                  "\nThe answer is: 46 ки"]
    assert toytask.first_wrong_step(q, used_twice) == 1  # + 4 is in the question once
    skipped = ["Step 1: 40 + 4 = 44 ки", "\nStep 2: 44 - 2 = 42 ки", "\nThe answer is: 42 ки"]
    assert toytask.first_wrong_step(q, skipped) == 2  # + 3 was never applied: the answer line is early
    assert toytask.exact_step_labels(q, skipped) == [1.0, 1.0, 0.0]
    not_in_question = ["Step 1: 40 + 5 = 45 ки"] + reordered[1:]
    assert toytask.first_wrong_step(q, not_in_question) == 0
    wrong_sign = ["Step 1: 40 - 4 = 36 ки"] + reordered[1:]
    assert toytask.first_wrong_step(q, wrong_sign) == 0
    slip = reordered[:1] + ["\nStep 2: 44 - 2 = 41 ки", "\nStep 3: 41 + 3 = 44 ки", "\nThe answer is: 44 ки"]
    assert toytask.first_wrong_step(q, slip) == 1
    extra = reordered[:3] + ["\nStep 4: 45 + 3 = 48 ки", "\nThe answer is: 48 ки"]
    assert toytask.first_wrong_step(q, extra) == 3  # every operation applied: only the answer line may follow


def test_order_aware_checker_allows_an_operation_the_question_holds_twice():
    q = "Compute 51 + 2 - 1 + 2."
    twice = ["Step 1: 51 + 2 = 53 ки", "\nStep 2: 53 + 2 = 55 ки", "\nStep 3: 55 - 1 = 54 ки", "\nThe answer is: 54 ки"]
    assert toytask.first_wrong_step(q, twice) is None
    thrice = twice[:2] + ["\nStep 3: 55 + 2 = 57 ки", "\nThe answer is: 57 ки"]
    assert toytask.first_wrong_step(q, thrice) == 2
