"""How good the verifiers are: the quality report (results/tables/prm_quality.*, results/figures/prm_quality.*).

Per verifier (the study's own, then each ablation: config prm_ablations) and policy, from the policy's scored
sampling candidates (all budgets' candidates: the largest run):
- within-problem and pooled AUC (infscale.evaluation.verifier) of the `last` and `min` step-score reductions;
- best-of-n accuracy against the oracle pick (some candidate is right: pass@n) and majority voting;
- calibration: the fraction of candidates right per bin of score, and its expected calibration error;
- (toy task) the ceiling: the within-problem AUC a perfect order-aware step checker reaches on the same candidates
  (its last-step score, toytask.exact_step_labels; min agrees). It is below 1 because right answers also pass
  through wrong steps, so a step verifier is measured against it, not against 1.
From the PRM's training rows (toy task only): how well the Math-Shepherd labels agree with the toy's exact
step correctness (toytask.exact_step_labels).

A candidate is VALID when it states its answer in the step format ("The answer is") and was not cut by the token
limit; an invalid one is wrong, never votes and never wins best-of-n. A problem is one (seed, question).
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd

from infscale.core.grading import normalize_answer
from infscale.core.stepformat import split_steps
from infscale.evaluation.aggregation import aggregate, reduce_step_scores
from infscale.evaluation.pass_at_k import candidate_right
from infscale.evaluation.verifier import pooled_auc, within_problem_auc

REDUCTIONS = ("last", "min")
CALIBRATION_BINS = 10


def is_valid(candidate: dict) -> bool:
    """States its answer in the step format and was not cut by the token limit; a code candidate (graded by
    running it: `passed`) has an answer when its run gave a behaviour (evaluation.code_grading)."""
    if "passed" in candidate:
        return candidate.get("answer") is not None
    return "The answer is" in candidate["text"] and candidate.get("finish_reason") != "length"


def candidate_answer(candidate: dict) -> str | None:
    return candidate.get("answer") if is_valid(candidate) else None


def problem_view(record: dict, grader: str, where: str = "", exact: bool = False) -> dict:
    """One problem's candidates: answers (None when invalid), correctness and the reduced scores; with `exact`
    (toy task) also the perfect step checker's score (1.0 when no step is wrong)."""
    cands = record["candidates"]
    missing = [i for i, c in enumerate(cands) if "step_scores" not in c]
    if missing:
        raise ValueError(f"{where}problem {record.get('id')}: candidate {missing[0]} has no PRM step_scores")
    answers = [candidate_answer(c) for c in cands]
    view = {
        "answers": answers,
        "correct": [a is not None and candidate_right(c, record["reference"], grader) for a, c in zip(answers, cands)],
        **{f"score_{r}": [reduce_step_scores(c["step_scores"], r) for c in cands] for r in REDUCTIONS},
    }
    if exact:
        from infscale.core.toytask import first_wrong_step

        view["score_exact"] = [float(first_wrong_step(record["question"], [x for x in split_steps(c["text"])
                                                                           if x.strip()]) is None) for c in cands]
    return view


def expected_calibration_error(scores, correct, bins: int = CALIBRATION_BINS) -> float:
    """Mean |score - fraction right| over equal-width score bins, weighted by their candidates."""
    s, c = np.asarray(scores, float), np.asarray(correct, float)
    if len(s) == 0:
        return math.nan
    idx = np.minimum((s * bins).astype(int), bins - 1)
    return float(sum(abs(s[idx == b].mean() - c[idx == b].mean()) * (idx == b).sum()
                     for b in range(bins) if (idx == b).any()) / len(s))


def calibration_rows(model: str, views: list[dict], reduction: str = "last",
                     bins: int = CALIBRATION_BINS) -> list[dict]:
    s = np.concatenate([v[f"score_{reduction}"] for v in views]) if views else np.array([])
    c = np.concatenate([v["correct"] for v in views]).astype(float) if views else np.array([])
    idx = np.minimum((s * bins).astype(int), bins - 1)
    return [{"model": model, "reduction": reduction, "bin_low": b / bins, "bin_high": (b + 1) / bins,
             "candidates": int((idx == b).sum()), "mean_score": float(s[idx == b].mean()),
             "fraction_right": float(c[idx == b].mean())}
            for b in range(bins) if (idx == b).any()]


def quality_row(model: str, views: list[dict], grader: str) -> dict:
    """The report's row of one policy: `views` are problem_view()s of all its problems (every seed)."""
    if not views:
        raise ValueError(f"{model}: no scored candidates")
    row = {"model": model, "problems": len(views), "candidates": sum(len(v["correct"]) for v in views),
           "sample_accuracy": float(np.mean([x for v in views for x in v["correct"]])),
           "valid_fraction": float(np.mean([a is not None for v in views for a in v["answers"]]))}
    for r in REDUCTIONS:
        pairs = [(v[f"score_{r}"], v["correct"]) for v in views]
        auc, both = within_problem_auc(pairs)
        row[f"within_auc_{r}"], row["problems_with_both"] = auc, both
        row[f"pooled_auc_{r}"] = pooled_auc(pairs)
    key = lambda a: normalize_answer(a, grader)  # noqa: E731
    right = lambda v, a: a is not None and v["correct"][v["answers"].index(a)]  # noqa: E731
    for r in REDUCTIONS:
        row[f"best_of_n_{r}"] = float(np.mean([right(v, aggregate(v["answers"], v[f"score_{r}"], "best_of_n", key))
                                               for v in views]))
    row["weighted_majority_last"] = float(np.mean(
        [right(v, aggregate(v["answers"], v["score_last"], "weighted_majority", key)) for v in views]))
    row["majority"] = float(np.mean([right(v, aggregate(v["answers"], None, "majority", key)) for v in views]))
    row["oracle"] = float(np.mean([any(v["correct"]) for v in views]))
    row["ceiling_auc"] = within_problem_auc([(v["score_exact"], v["correct"]) for v in views])[0] \
        if "score_exact" in views[0] else math.nan
    row["ece_last"] = expected_calibration_error(np.concatenate([v["score_last"] for v in views]),
                                                 np.concatenate([v["correct"] for v in views]))
    return row


def label_agreement(prm_rows: list[dict], where: str = "") -> list[dict]:
    """Math-Shepherd hard labels against the toy's exact step correctness, per sampling policy (`source`) and
    over all rows: step agreement, and among exactly right (wrong) steps the fraction labelled + (-)."""
    from infscale.core.stepformat import parse_math_shepherd_labels
    from infscale.core.toytask import exact_step_labels

    counts = defaultdict(lambda: np.zeros((2, 2), int))  # [exact][label]
    for i, row in enumerate(prm_rows):
        here = f"{where}row {i + 1}: "
        labels = parse_math_shepherd_labels(row["input"], row["label"], where=here)
        question, solution = row["input"].split("\n", 1)
        steps = [s for s in split_steps(solution) if s.strip()]
        exact = exact_step_labels(question, steps)
        if len(exact) != len(labels):
            raise ValueError(f"{here}{len(labels)} labels for {len(exact)} steps")
        for key in ["all"] + ([row["source"]] if row.get("source") else []):
            for e, lab in zip(exact, labels):
                counts[key][int(e), int(lab)] += 1
    out = []
    for key, m in sorted(counts.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        out.append({"source": key, "solutions": sum(1 for r in prm_rows if key == "all" or r.get("source") == key),
                    "steps": int(m.sum()), "agreement": (m[0, 0] + m[1, 1]) / m.sum(),
                    "exactly_wrong_fraction": m[0].sum() / m.sum(),
                    "right_steps_labelled_plus": m[1, 1] / m[1].sum() if m[1].sum() else math.nan,
                    "wrong_steps_labelled_minus": m[0, 0] / m[0].sum() if m[0].sum() else math.nan})
    return out


def quality_tables(scored: dict[tuple[str, str, str], list[list[dict]]], graders: dict[str, str],
                   prm_rows: dict[str, list[dict]] | None = None, toy: frozenset | set = frozenset()
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(quality per verifier and policy, calibration bins, label agreement) from {(verifier, dataset, model):
    [records of each seed]}, the grader of each data set, {verifier: its Math-Shepherd training rows} and the toy
    data sets (where the perfect step checker's ceiling is known)."""
    quality, calibration = [], []
    for (verifier, dataset, model), runs in scored.items():
        where = f"{verifier}: {dataset}/{model}: "
        views = [problem_view(r, graders[dataset], where, exact=dataset in toy) for recs in runs for r in recs]
        quality.append({"verifier": verifier, "dataset": dataset, **quality_row(model, views, graders[dataset])})
        calibration += [{"verifier": verifier, "dataset": dataset, **c}
                        for c in calibration_rows(model, views, "last")]
    labels = pd.DataFrame([{"verifier": v, **row} for v, rows in (prm_rows or {}).items()
                           for row in label_agreement(rows, f"{v}: ")])
    return pd.DataFrame(quality), pd.DataFrame(calibration), labels


def to_markdown(quality: pd.DataFrame, calibration: pd.DataFrame, labels: pd.DataFrame) -> str:
    from infscale.reporting.report import to_markdown as table

    parts = ["# Verifier quality\n",
             "Per verifier (the study's own first, then the ablations) and policy, over the policy's sampled test "
             "candidates (every seed; a problem is one seed's question). "
             "within_auc: P(a right candidate outscores a wrong one of the same problem), mean over problems with "
             "both; pooled_auc: all candidates in one ranking; ceiling_auc (toy task): the within-problem AUC of a "
             "perfect order-aware step checker on the same candidates. best_of_n / weighted_majority / majority at "
             "the largest n; oracle: some candidate is right. Invalid candidates (no \"The answer is\", or cut by "
             "the token limit) are wrong and never vote.\n", table(quality, ".3f"),
             "\n## Calibration (last-step score)\n", table(calibration, ".3f")]
    if len(labels):
        parts += ["\n## Math-Shepherd labels against the toy's exact step correctness\n", table(labels, ".3f")]
    return "\n".join(parts) + "\n"


def plot_quality(quality: pd.DataFrame, calibration: pd.DataFrame, png, pdf, source: str) -> None:
    from infscale.reporting.plotting import _new_figure, save_figure

    fig, (ax_cal, ax_auc) = _new_figure(2)
    for (verifier, dataset, model), d in calibration.groupby(["verifier", "dataset", "model"], sort=False):
        ax_cal.plot(d["mean_score"], d["fraction_right"], marker="o", label=f"{verifier}: {dataset}/{model}",
                    linestyle="-" if verifier == quality["verifier"].iloc[0] else ":")
    ax_cal.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
    ax_cal.set(xlabel="PRM score (last step)", ylabel="fraction of candidates right", title="Calibration",
               xlim=(0, 1), ylim=(0, 1))
    ax_cal.legend(fontsize=8)
    x = np.arange(len(quality))
    for i, (col, label) in enumerate((("within_auc_last", "within, last"), ("within_auc_min", "within, min"),
                                      ("pooled_auc_last", "pooled, last"))):
        ax_auc.bar(x + (i - 1) * 0.27, quality[col], width=0.27, label=label)
    ax_auc.axhline(0.5, color="0.6", linestyle="--", linewidth=1)
    if quality["ceiling_auc"].notna().any():
        ax_auc.scatter(x, quality["ceiling_auc"], marker="_", s=300, color="k", zorder=3, label="ceiling")
    ax_auc.set(xticks=x, xticklabels=quality["verifier"] + "\n" + quality["model"], ylim=(0, 1), ylabel="AUC",
               title="Ranking candidates")
    ax_auc.legend(fontsize=8)
    save_figure(fig, png, pdf, "PRM quality", source)
