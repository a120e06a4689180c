"""Why majority voting does not beat greedy on the toy task: per problem, greedy against majority at the largest n,
and how a sampled solution goes wrong.

Reads a finished run (results/metrics/<dataset>/<model>/{greedy,sampling}.problems.csv and the sampling
generations) and writes benchmarks/results/voting_vs_greedy.md:

- the 2x2 table of (greedy right?, majority@n right?) over (problem, seed);
- for wrong sampled candidates: the share whose first wrong step is followed only by steps that are right for
  the numbers written (the error propagates, so every sample with that slip ends on the same wrong answer), and
  the share of right answers reached through a wrong step (compensating slips).

    python benchmarks/voting_vs_greedy.py [--results results] [--dataset toy]
"""
from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from infscale.core.grading import is_correct
from infscale.core.stepformat import STEP_TAG, split_steps
from infscale.core.toytask import first_wrong_step

ROOT = Path(__file__).resolve().parents[1]
_STEP = re.compile(r"Step \d+: (\d+) ([+-]) (\d+) = (\d+)")


def voting_table(results: Path, dataset: str, model: str) -> tuple[Counter, int]:
    base = results / "metrics" / dataset / model
    greedy = pd.read_csv(base / "greedy.problems.csv")
    sampling = pd.read_csv(base / "sampling.problems.csv")
    greedy = greedy[greedy.aggregation == "majority"].set_index("id")["correct"]
    budget = sampling[(sampling.kind == "budget") & (sampling.aggregation == "majority")]
    n = int(budget.n.max())
    table = Counter()
    for row in budget[budget.n == n].itertuples():
        table[(bool(greedy[row.id]), bool(row.correct))] += 1
    return table, n


def error_shapes(path: Path) -> dict[str, float]:
    """Over every sampled candidate that ends with an answer line: how its errors behave."""
    wrong = propagated = right_through_slip = right = 0
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        for c in rec["candidates"]:
            steps = [s for s in split_steps(c["text"]) if s.strip()]
            first = first_wrong_step(rec["question"], steps)
            ok = is_correct(c["answer"], rec["reference"], "toy")  # the pipeline's own grading
            right += ok
            right_through_slip += ok and first is not None
            if ok or first is None or c["answer"] is None:
                continue
            wrong += 1
            later = [_STEP.search(s.replace(STEP_TAG, "")) for s in steps[first + 1:-1]]
            consistent = all(m and (int(m[1]) + int(m[3]) if m[2] == "+" else int(m[1]) - int(m[3])) == int(m[4])
                             for m in later)
            propagated += consistent
    return {"wrong": wrong, "propagated": propagated / max(wrong, 1), "right": right,
            "right_through_slip": right_through_slip / max(right, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "results")
    ap.add_argument("--dataset", default="toy")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "voting_vs_greedy.md")
    a = ap.parse_args()
    where = a.results.resolve()
    where = where.relative_to(ROOT) if where.is_relative_to(ROOT) else where
    lines = ["# Majority voting against greedy, per problem", "",
             f"From `{where}` "
             "(`python benchmarks/voting_vs_greedy.py`). Pairs are (problem, seed); greedy is "
             "deterministic. *propagated*: wrong candidates whose steps after the first wrong one are all right for "
             "the numbers written, so the slip carries to the answer unchanged. *right through a slip*: right "
             "answers reached with a wrong step on the way.", "",
             "| model | n | both right | greedy only | majority only | both wrong | wrong candidates | propagated "
             "| right through a slip |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model_dir in sorted((a.results / "metrics" / a.dataset).iterdir()):
        model = model_dir.name
        table, n = voting_table(a.results, a.dataset, model)
        shapes = [error_shapes(p) for p in sorted((a.results / "generations" / a.dataset / model / "sampling").glob(
            "n*/seed*.jsonl"))]
        wrong = sum(s["wrong"] for s in shapes)
        prop = sum(s["propagated"] * s["wrong"] for s in shapes) / max(wrong, 1)
        right = sum(s["right"] for s in shapes)
        slip = sum(s["right_through_slip"] * s["right"] for s in shapes) / max(right, 1)
        lines.append(f"| {model} | {n} | {table[(True, True)]} | {table[(True, False)]} | {table[(False, True)]} | "
                     f"{table[(False, False)]} | {wrong} | {prop:.1%} | {slip:.1%} |")
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
