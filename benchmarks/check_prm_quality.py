"""Recompute the within-problem AUCs and the ceiling of results/tables/prm_quality.csv from the scored candidates.

    python benchmarks/check_prm_quality.py [RESULTS_DIR]

Independent of the package (no infscale code): reads every largest sampling run's scored candidates straight from
JSON, results/scored/ for the study's verifier (the table's first) and results/scored_ablations/<verifier>/ for
each ablation. A candidate is right when it states "The answer is", was not cut by the token limit and its answer
equals the reference once whitespace is removed (the numeric grader's rule: "4 4" is 44); the score is its last
(min) step score; per problem (seed, question), the fraction of (right, wrong) pairs where the right one scores
higher (ties one half), averaged over the problems with both. The ceiling (toy task) is the same AUC of a perfect
order-aware step checker, written here again from the task's definition: a step "Step k: a op b = c" is right when
a is the running value, (op, b) one of the question's operations not yet applied and c = a op b; the answer line
is right when every operation is applied and it states the value. Prints every number per verifier and model and
exits 1 when one differs from the table by more than 1e-9.
"""
import csv
import glob
import json
import math
import re
import sys
from pathlib import Path

TAG = "ки"
STEP = re.compile(r"^\s*Step (\d+): (\d+) ([+-]) (\d+) = (\d+)\s*$")
ANSWER = re.compile(r"^\s*The answer is:?\s*(-?\d+)\s*$")


def perfect_checker(question: str, text: str) -> float:
    """1.0 when every step of `text` is right for the toy `question`, else 0.0."""
    m = re.match(r"^Compute (\d+)((?: [+-] \d+)+)\.$", question.strip())
    value, parts = int(m.group(1)), m.group(2).split()
    left = [(parts[i], int(parts[i + 1])) for i in range(0, len(parts), 2)]
    pieces = text.split(TAG)
    steps = pieces[:-1] + ([pieces[-1]] if pieces[-1].strip() else [])  # every tag ends a step, an empty one too
    for k, step in enumerate(steps):
        if not left:  # the first line after the last operation decides
            a = ANSWER.match(step)
            return float(bool(a) and int(a.group(1)) == value)
        s = STEP.match(step)
        if not s or int(s.group(1)) != k + 1 or int(s.group(2)) != value or (s.group(3), int(s.group(4))) not in left:
            return 0.0
        left.remove((s.group(3), int(s.group(4))))
        value = value + int(s.group(4)) if s.group(3) == "+" else value - int(s.group(4))
        if int(s.group(5)) != value:
            return 0.0
    return 0.0  # ended before its answer line


def within_auc(problems) -> float:
    aucs = []
    for pairs in problems:
        right = [s for s, ok in pairs if ok]
        wrong = [s for s, ok in pairs if not ok]
        if right and wrong:
            wins = sum(1.0 if r > w else 0.5 if r == w else 0.0 for r in right for w in wrong)
            aucs.append(wins / (len(right) * len(wrong)))
    return sum(aucs) / len(aucs) if aucs else math.nan


def main(results: Path) -> int:
    rows = list(csv.DictReader(open(results / "tables" / "prm_quality.csv")))
    own = rows[0]["verifier"]
    bad = 0
    for row in rows:
        verifier, dataset, model = row["verifier"], row["dataset"], row["model"]
        base = results / "scored" if verifier == own else results / "scored_ablations" / verifier
        runs = glob.glob(str(base / dataset / model / "sampling" / "n*" / "seed*.jsonl"))
        largest = max(int(Path(f).parent.name[1:]) for f in runs)
        problems = {"last": [], "min": [], "ceiling": []}
        for f in runs:
            if int(Path(f).parent.name[1:]) != largest:
                continue
            for line in open(f):
                rec = json.loads(line)
                per = {k: [] for k in problems}
                for c in rec["candidates"]:
                    valid = "The answer is" in c["text"] and c["finish_reason"] != "length"
                    ok = valid and c["answer"] is not None and "".join(c["answer"].split()) == "".join(
                        str(rec["reference"]).split())
                    per["last"].append((c["step_scores"][-1], ok))
                    per["min"].append((min(c["step_scores"]), ok))
                    if dataset == "toy" or rec["question"].startswith("Compute "):
                        per["ceiling"].append((perfect_checker(rec["question"], c["text"]), ok))
                for k in problems:
                    problems[k].append(per[k])
        checks = [("within_auc_last", within_auc(problems["last"])), ("within_auc_min", within_auc(problems["min"]))]
        if row.get("ceiling_auc") not in (None, "", "nan"):
            checks.append(("ceiling_auc", within_auc(problems["ceiling"])))
        for column, mine in checks:
            theirs = float(row[column])
            agree = abs(mine - theirs) <= 1e-9
            bad += not agree
            print(f"{verifier}: {dataset}/{model} {column}: table {theirs:.6f}, recomputed {mine:.6f} over "
                  f"{len(problems['last'])} problems {'agree' if agree else 'DIFFER'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results")))
