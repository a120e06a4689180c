"""Tests for infscale.evaluation.aggregation: step-score reductions, voting, subsampling."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infscale.evaluation.aggregation import (
    AGGREGATIONS,
    REDUCTIONS,
    aggregate,
    reduce_step_scores,
    subsample,
)

# ---------------------------------------------------------------- reductions


@pytest.mark.parametrize(
    "how, expected",
    [("last", 0.5), ("min", 0.2), ("prod", 0.8 * 0.2 * 0.5), ("mean", (0.8 + 0.2 + 0.5) / 3)],
)
def test_reductions_hand_example(how: str, expected: float) -> None:
    assert reduce_step_scores([0.8, 0.2, 0.5], how) == pytest.approx(expected)


def test_reduction_default_is_last() -> None:
    assert reduce_step_scores([0.1, 0.9]) == 0.9


@pytest.mark.parametrize("how", REDUCTIONS)
def test_reduction_empty_is_zero(how: str) -> None:
    assert reduce_step_scores([], how) == 0.0


def test_reduction_unknown() -> None:
    with pytest.raises(ValueError, match="median") as exc:
        reduce_step_scores([0.5], "median")
    assert all(r in str(exc.value) for r in REDUCTIONS)


@pytest.mark.parametrize("how", REDUCTIONS)
def test_reduction_nan(how: str) -> None:
    with pytest.raises(ValueError, match=r"^NaN step score$"):
        reduce_step_scores([0.5, math.nan], how)


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(st.lists(unit, min_size=1, max_size=20))
def test_prod_le_min_le_mean(scores: list[float]) -> None:
    p, m, a = (reduce_step_scores(scores, h) for h in ("prod", "min", "mean"))
    assert p <= m + 1e-12
    assert m <= a + 1e-12


# ---------------------------------------------------------------- aggregate: hand examples


def test_majority_basic() -> None:
    assert aggregate(["1", "2", "2", "3"], None, "majority") == "2"


def test_majority_tie_first_seen() -> None:
    assert aggregate(["3", "1", "1", "3"], None, "majority") == "3"


def test_majority_ignores_weights() -> None:
    assert aggregate(["a", "b", "b"], [100.0, 0.0, 0.0], "majority") == "b"
    assert aggregate(["a", "b", "b"], [1.0], "majority") == "b"  # weights ignored entirely


def test_majority_none_never_wins() -> None:
    assert aggregate([None, None, None, "7"], None, "majority") == "7"


def test_weighted_majority_basic() -> None:
    # "a": 0.9; "b": 0.3 + 0.4 = 0.7 -> "a" beats the plain majority "b".
    assert aggregate(["a", "b", "b"], [0.9, 0.3, 0.4], "weighted_majority") == "a"
    assert aggregate(["a", "b", "b"], [0.5, 0.3, 0.4], "weighted_majority") == "b"


def test_weighted_majority_tie_first_seen() -> None:
    assert aggregate(["b", "a", "a"], [0.5, 0.25, 0.25], "weighted_majority") == "b"


def test_weighted_majority_none_never_wins() -> None:
    assert aggregate([None, None, "x"], [1.0, 1.0, 0.1], "weighted_majority") == "x"


def test_best_of_n_basic_and_tie() -> None:
    assert aggregate(["a", "b", "c"], [0.1, 0.9, 0.5], "best_of_n") == "b"
    assert aggregate(["a", "b", "c"], [0.9, 0.9, 0.5], "best_of_n") == "a"


def test_best_of_n_none_never_wins() -> None:
    assert aggregate([None, "b", "c"], [1.0, 0.2, 0.3], "best_of_n") == "c"


def test_key_groups_and_returns_first_seen_string() -> None:
    key = lambda a: a.strip().lower()  # noqa: E731
    answers = ["X ", "y", "x", "Y", "x"]
    assert aggregate(answers, None, "majority", key=key) == "X "
    assert aggregate(answers, [0.1, 0.5, 0.1, 0.5, 0.1], "weighted_majority", key=key) == "y"


@pytest.mark.parametrize("method", AGGREGATIONS)
def test_all_none_returns_none(method: str) -> None:
    assert aggregate([None, None], [0.5, 0.5], method) is None
    assert aggregate([], [], method) is None


@pytest.mark.parametrize("method", ["weighted_majority", "best_of_n"])
def test_weights_required(method: str) -> None:
    with pytest.raises(ValueError, match="weights"):
        aggregate(["a"], None, method)
    with pytest.raises(ValueError, match="2 answers but 1 weights"):
        aggregate(["a", "b"], [1.0], method)


def test_unknown_method() -> None:
    with pytest.raises(ValueError, match="plurality"):
        aggregate(["a"], None, "plurality")


# ---------------------------------------------------------------- aggregate: properties

answer = st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"]))
answers_st = st.lists(answer, max_size=12)


@given(answers_st)
def test_majority_is_a_max_count_answer(answers: list[str | None]) -> None:
    result = aggregate(answers, None, "majority")
    counts = Counter(a for a in answers if a is not None)
    if counts:
        assert counts[result] == max(counts.values())
    else:
        assert result is None


@given(answers_st, st.floats(min_value=0.01, max_value=1.0))
def test_equal_weights_weighted_equals_majority(answers: list[str | None], w: float) -> None:
    # Equal counts give bit-identical sums (same additions), so ties resolve the same way.
    assert aggregate(answers, [w] * len(answers), "weighted_majority") == aggregate(
        answers, None, "majority"
    )


@given(st.lists(st.tuples(answer, unit)))
def test_best_of_n_has_max_weight(cands: list[tuple[str | None, float]]) -> None:
    answers = [a for a, _ in cands]
    weights = [w for _, w in cands]
    result = aggregate(answers, weights, "best_of_n")
    valid = [(a, w) for a, w in cands if a is not None]
    if not valid:
        assert result is None
    else:
        top = max(w for _, w in valid)
        assert result in {a for a, w in valid if w == top}


@given(
    st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=4, unique=True).filter(
        lambda cs: max(cs) > 0
    ),
    st.integers(min_value=0, max_value=4),
    st.randoms(use_true_random=False),
)
def test_majority_permutation_invariant_with_distinct_counts(counts, n_none, rnd) -> None:
    answers: list[str | None] = [str(i) for i, c in enumerate(counts) for _ in range(c)]
    answers += [None] * n_none
    expected = aggregate(answers, None, "majority")
    rnd.shuffle(answers)
    assert aggregate(answers, None, "majority") == expected == str(counts.index(max(counts)))


@given(st.sampled_from(AGGREGATIONS), st.lists(st.tuples(answer, unit)))
def test_none_iff_all_none(method: str, cands: list[tuple[str | None, float]]) -> None:
    answers = [a for a, _ in cands]
    result = aggregate(answers, [w for _, w in cands], method)
    assert (result is None) == all(a is None for a in answers)


# ---------------------------------------------------------------- subsample


def test_subsample_prefix() -> None:
    assert subsample([1, 2, 3, 4], 2) == [1, 2]
    assert subsample([1, 2, 3, 4], 4) == [1, 2, 3, 4]
    assert subsample(["first", "second"], 1) == ["first"]  # n = 1: a single sample, the smallest budget


@pytest.mark.parametrize("n", [0, -1, 5, 2.0, True])
def test_subsample_invalid(n) -> None:
    with pytest.raises(ValueError, match="4"):
        subsample([1, 2, 3, 4], n)
