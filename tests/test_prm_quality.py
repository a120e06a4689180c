"""The PRM quality report: ranking within problems, best-of-n against the oracle, calibration, label agreement."""
import math

import pytest

from infscale.evaluation.verifier import within_problem_auc
from infscale.reporting.prm_quality import (
    expected_calibration_error,
    is_valid,
    label_agreement,
    plot_quality,
    problem_view,
    quality_row,
    quality_tables,
    to_markdown,
)
from infscale.training.prm_data import to_math_shepherd_row


def cand(answer, score, finish="stop", text=None):
    text = text if text is not None else f"Step 1: ... ки\nThe answer is: {answer} ки"
    return {"text": text, "answer": answer, "finish_reason": finish, "step_scores": [0.5, score]}


def record(pid, ref, cands):
    return {"id": pid, "question": "Compute 10 + 2.", "reference": ref, "candidates": cands}


def test_a_verifier_that_only_knows_hard_problems_has_pooled_but_no_within_auc():
    # Problem a (easy): scores 0.9 for all; problem b (hard): 0.1 for all. Right answers are rarer on b.
    recs = [record("a", "12", [cand("12", 0.9), cand("12", 0.9), cand("13", 0.9)]),
            record("b", "12", [cand("14", 0.1), cand("14", 0.1), cand("12", 0.1)])]
    row = quality_row("m", [problem_view(r, "toy") for r in recs], "toy")
    assert row["within_auc_last"] == pytest.approx(0.5) and row["problems_with_both"] == 2
    assert row["pooled_auc_last"] > 0.6
    assert row["oracle"] == 1.0 and row["majority"] == 0.5


def test_best_of_n_reaches_the_oracle_with_a_perfect_ranker_and_cut_candidates_never_win():
    recs = [record("a", "12", [cand("13", 0.2), cand("12", 0.8), cand("13", 0.3)]),
            # The top-scored candidate was cut by the token limit: it has no answer, the next one wins.
            record("b", "7", [cand("7", 0.99, finish="length"), cand("7", 0.6), cand("8", 0.4)]),
            record("c", "5", [cand("5", 0.7, text="Step 1: 5 ки"), cand("6", 0.3)])]  # no answer line: invalid
    views = [problem_view(r, "toy") for r in recs]
    assert views[1]["correct"] == [False, True, False] and views[2]["correct"] == [False, False]
    row = quality_row("m", views, "toy")
    assert row["best_of_n_last"] == pytest.approx(2 / 3) and row["oracle"] == pytest.approx(2 / 3)
    assert row["majority"] == pytest.approx(1 / 3)  # a: two votes for 13
    # Independent check of the within-problem AUC with the verifier module on the same flags.
    expected, both = within_problem_auc([([0.2, 0.8, 0.3], [0, 1, 0]), ([0.99, 0.6, 0.4], [0, 1, 0])])
    assert row["within_auc_last"] == pytest.approx(expected) and row["problems_with_both"] == both == 2
    assert row["valid_fraction"] == pytest.approx(6 / 8)


def test_min_reduction_is_reported_separately():
    good = {"text": "The answer is: 12 ки", "answer": "12", "finish_reason": "stop", "step_scores": [0.1, 0.9]}
    bad = {"text": "The answer is: 13 ки", "answer": "13", "finish_reason": "stop", "step_scores": [0.5, 0.8]}
    row = quality_row("m", [problem_view(record("a", "12", [good, bad]), "toy")], "toy")
    assert row["within_auc_last"] == 1.0 and row["within_auc_min"] == 0.0
    assert row["best_of_n_last"] == 1.0 and row["best_of_n_min"] == 0.0


def test_missing_scores_name_the_problem():
    c = cand("12", 0.5)
    del c["step_scores"]
    with pytest.raises(ValueError, match="problem q7: candidate 0 has no PRM step_scores"):
        problem_view(record("q7", "12", [c]), "toy", "")


def test_is_valid():
    assert is_valid(cand("1", 0.5)) and not is_valid(cand("1", 0.5, finish="length"))
    assert not is_valid(cand("1", 0.5, text="Step 1: 1 + 1 = 2 ки"))


def test_calibration_error_is_zero_when_scores_match_frequencies_and_large_when_inverted():
    scores = [0.25] * 4 + [0.75] * 4
    right = [1, 0, 0, 0, 1, 1, 1, 0]
    assert expected_calibration_error(scores, right) == pytest.approx(0.0)
    assert expected_calibration_error(scores, [0, 1, 1, 1, 0, 0, 0, 1]) == pytest.approx(0.5)
    assert math.isnan(expected_calibration_error([], []))


Q = "Compute 40 + 3 - 8."


def labelled(steps, soft, source):
    return {**to_math_shepherd_row(Q, steps, soft), "source": source}


def test_label_agreement_against_exact_step_correctness():
    good = ["Step 1: 40 + 3 = 43 ки", "\nStep 2: 43 - 8 = 35 ки", "\nThe answer is: 35 ки"]
    bad = ["Step 1: 40 + 3 = 44 ки", "\nStep 2: 44 - 8 = 36 ки", "\nThe answer is: 36 ки"]
    rows = [labelled(good, [1.0, 1.0, 1.0], "xs"),
            labelled(good, [0.0, 1.0, 1.0], "m"),   # a right step labelled '-' (weak completer)
            labelled(bad, [1.0, 0.0, 0.0], "m")]    # a wrong step labelled '+'
    out = {r["source"]: r for r in label_agreement(rows)}
    assert list(out) == ["m", "xs", "all"]
    assert out["xs"]["agreement"] == 1.0 and out["xs"]["steps"] == 3
    assert out["m"]["steps"] == 6 and out["m"]["agreement"] == pytest.approx(4 / 6)
    assert out["m"]["right_steps_labelled_plus"] == pytest.approx(2 / 3)
    assert out["m"]["wrong_steps_labelled_minus"] == pytest.approx(2 / 3)
    assert out["all"]["steps"] == 9 and out["all"]["solutions"] == 3
    assert out["all"]["exactly_wrong_fraction"] == pytest.approx(3 / 9)


def test_report_files(tmp_path):
    recs = [record("a", "12", [cand("12", 0.8), cand("13", 0.2)]), record("b", "3", [cand("3", 0.6), cand("4", 0.7)])]
    quality, calibration, labels = quality_tables({("v", "toy", "m"): [recs, recs]}, {"toy": "toy"}, None)
    assert list(quality["dataset"]) == ["toy"] and quality.loc[0, "problems"] == 4
    assert list(quality["verifier"]) == ["v"] and math.isnan(quality.loc[0, "ceiling_auc"])  # not a toy set
    assert quality.loc[0, "within_auc_last"] == pytest.approx(0.5)
    assert calibration["candidates"].sum() == 8 and labels.empty
    md = to_markdown(quality, calibration, labels)
    assert "within_auc_last" in md and "Calibration" in md
    plot_quality(quality, calibration, tmp_path / "q.png", tmp_path / "q.pdf", "test")
    assert (tmp_path / "q.png").stat().st_size > 1000 and (tmp_path / "q.pdf").exists()


def test_ceiling_is_the_auc_of_a_perfect_order_aware_step_checker():
    q = "Compute 40 + 3 - 2."
    clean = "Step 1: 40 - 2 = 38 ки\nStep 2: 38 + 3 = 41 ки\nThe answer is: 41 ки"  # another order: right
    through_slip = "Step 1: 40 + 3 = 44 ки\nStep 2: 44 - 2 = 41 ки\nThe answer is: 41 ки"  # right answer, wrong step
    wrong = "Step 1: 40 + 3 = 43 ки\nStep 2: 43 + 3 = 46 ки\nThe answer is: 46 ки"  # + 3 applied twice
    def c(text, answer, score):
        return {"text": text, "answer": answer, "finish_reason": "stop", "step_scores": [score]}
    p1 = {"id": "a", "question": q, "reference": "41",
          "candidates": [c(clean, "41", 0.2), c(through_slip, "41", 0.9), c(wrong, "46", 0.5)]}
    p2 = {"id": "b", "question": q, "reference": "41", "candidates": [c(clean, "41", 0.1), c(wrong, "46", 0.3)]}
    quality, _, _ = quality_tables({("v", "toy", "m"): [[p1, p2]]}, {"toy": "toy"}, None, {"toy"})
    row = quality.iloc[0]
    # p1: the checker scores clean 1, through_slip 0, wrong 0: (1 + 0.5) / 2 = 0.75; p2: 1.0
    assert row["ceiling_auc"] == pytest.approx((0.75 + 1.0) / 2)
    assert row["within_auc_last"] == pytest.approx((0.5 + 0.0) / 2)  # the verifier's own ranking


def test_rows_per_verifier_on_the_same_candidates():
    recs = [record("a", "12", [cand("12", 0.8), cand("13", 0.2)])]
    flipped = [record("a", "12", [cand("12", 0.2), cand("13", 0.8)])]
    quality, calibration, _ = quality_tables({("own", "toy", "m"): [recs], ("ablation", "toy", "m"): [flipped]},
                                             {"toy": "toy"})
    assert list(quality["verifier"]) == ["own", "ablation"]
    assert list(quality["within_auc_last"]) == [1.0, 0.0] and list(quality["oracle"]) == [1.0, 1.0]
    assert set(calibration["verifier"]) == {"own", "ablation"}
