"""Coverage: the share of problems where some candidate is right, the ceiling of any verifier (docs/design.md,
"Coverage").

Two estimates per budget n, both averaged over problems:
  coverage          sampling: the unbiased pass@n of Chen et al. (2021) over ALL N candidates drawn,
                    1 - C(N - c, n) / C(N, n) (c right), the chance that n of them drawn at random hold a right one;
  coverage_first_n  whether one of the first n candidates, the ones every aggregation at n reads, is right.
Both have the same expectation over the order of exchangeable samples; only coverage_first_n bounds every
aggregation's accuracy at n in every run (the unbiased one can fall below: a problem whose single right
candidate comes first is solved by any vote at n = 1, yet its pass@1 is 1/N). A tree search's candidates are
its own run's, not draws from one pool: both are the share of problems with a right one among them.
"""
from __future__ import annotations

import math

from infscale.core.grading import grader_kind, is_correct


def pass_at_k(n_samples: int, n_correct: int, k: int) -> float:
    """Unbiased pass@k from n_samples draws of which n_correct are right: 1 - C(N - c, k) / C(N, k)."""
    if not 0 <= n_correct <= n_samples or not 1 <= k <= n_samples:
        raise ValueError(f"pass@k needs 0 <= c <= N and 1 <= k <= N, got N={n_samples}, c={n_correct}, k={k}")
    if n_samples - n_correct < k:
        return 1.0
    # C(N - c, k) / C(N, k) as a product: no huge integers, no cancellation
    return 1.0 - math.prod((n_samples - n_correct - i) / (n_samples - i) for i in range(k))


def candidate_right(candidate: dict, reference: str, grader: str) -> bool:
    """Whether one candidate is right: its answer matches the reference, or, for code, it passed its asserts when
    it ran (`passed`, set by evaluation.code_grading)."""
    if grader_kind(grader) == "code":
        if "passed" not in candidate:
            raise ValueError("a code candidate that was never run (no 'passed'): grade it with "
                             "infscale.evaluation.code_grading.grade_records")
        return bool(candidate["passed"])
    return is_correct(candidate["answer"], reference, grader)


def right_flags(record: dict, grader: str) -> list[bool]:
    """Whether each candidate of a record is right (no stated answer is wrong); for code, pass@k's "passes"."""
    return [candidate_right(c, record["reference"], grader) for c in record["candidates"]]


def problem_coverage(right: list[bool], n: int, *, tree: bool) -> tuple[float, float]:
    """(coverage, coverage_first_n) at budget n of one problem whose candidates are `right` (right_flags), in
    their order (module docstring)."""
    if tree:
        any_right = float(any(right))
        return any_right, any_right
    if not 1 <= n <= len(right):
        raise ValueError(f"budget {n} but {len(right)} candidates drawn")
    return pass_at_k(len(right), sum(right), n), float(any(right[:n]))
