import itertools
import math
import random

import pytest

from infscale.evaluation.verifier import pairwise_auc, pooled_auc, within_problem_auc


def brute_auc(scores, correct):
    pairs = [(a, b) for (a, ca), (b, cb) in itertools.product(zip(scores, correct), repeat=2) if ca and not cb]
    if not pairs:
        return math.nan
    return sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)


def test_pairwise_auc_equals_counting_every_pair_with_ties():
    rng = random.Random(0)
    for _ in range(300):
        k = rng.randint(2, 12)
        scores = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(k)]
        correct = [rng.random() < 0.5 for _ in range(k)]
        expected = brute_auc(scores, correct)
        got = pairwise_auc(scores, correct)
        assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected)


def test_within_problem_auc_ignores_between_problem_difficulty():
    # Each problem's verifier ranks its own candidates backwards, but easy problems score high overall:
    # pooled AUC looks good, the within-problem AUC shows that the verifier cannot pick.
    easy = ([0.9, 0.95], [True, False])
    hard = ([0.1, 0.15], [True, False])
    all_right = ([0.8, 0.85], [True, True])  # one kind only: not counted within problems
    all_wrong = ([0.05], [False])
    problems = [easy, hard, all_right, all_wrong]
    assert within_problem_auc(problems) == (0.0, 2)
    assert pooled_auc(problems) == pytest.approx(7 / 12)


def test_no_problem_with_both_kinds_is_nan():
    auc, counted = within_problem_auc([([0.2], [True]), ([0.3, 0.1], [False, False])])
    assert math.isnan(auc) and counted == 0
    with pytest.raises(ValueError, match="2 scores but 1"):
        pairwise_auc([0.1, 0.2], [True])


def test_correctness_given_as_zeros_and_ones_is_read_as_flags():
    # 0/1 integers must not be taken as indices into the scores
    assert pairwise_auc([0.9, 0.1, 0.8], [1, 0, 1]) == 1.0
    assert pairwise_auc([0.9, 0.1, 0.8], [0, 1, 1]) == 0.0


def test_one_kind_of_candidate_is_nan_without_numpy_warnings():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0/0 or mean-of-empty on the way
        assert math.isnan(pairwise_auc([0.1, 0.2], [True, True]))
        assert math.isnan(pairwise_auc([0.1, 0.2], [False, False]))
        assert within_problem_auc([([0.1], [True])])[1] == 0
