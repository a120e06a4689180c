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
