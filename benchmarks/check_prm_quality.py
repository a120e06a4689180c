"""Recompute the within-problem AUC of results/tables/prm_quality.csv from results/scored/ independently.

    python benchmarks/check_prm_quality.py [RESULTS_DIR]

Reads every sampling run's scored candidates straight from JSON (no infscale code): a candidate is right when it
states "The answer is", was not cut by the token limit and its answer equals the reference once whitespace is
removed (the numeric grader's rule: "4 4" is 44); the score is its
last (min) step score; per problem (seed, question), the fraction of (right, wrong) pairs where the right one
scores higher (ties one half), averaged over the problems with both. Prints both numbers per model and exits 1
when they differ by more than 1e-9.
"""
import csv
import glob
import json
import sys
from pathlib import Path

results = Path(sys.argv[1] if len(sys.argv) > 1 else "results")
table = {(r["dataset"], r["model"]): r for r in csv.DictReader(open(results / "tables" / "prm_quality.csv"))}
bad = 0
for (dataset, model), row in sorted(table.items()):
    runs = glob.glob(str(results / "scored" / dataset / model / "sampling" / "n*" / "seed*.jsonl"))
    largest = max(int(Path(f).parent.name[1:]) for f in runs)
    for reduction in ("last", "min"):
        aucs = []
        for f in runs:
            if int(Path(f).parent.name[1:]) != largest:
                continue
            for line in open(f):
                rec = json.loads(line)
                right, wrong = [], []
                for c in rec["candidates"]:
                    valid = "The answer is" in c["text"] and c["finish_reason"] != "length"
                    ok = valid and c["answer"] is not None and "".join(c["answer"].split()) == "".join(
                        str(rec["reference"]).split())
                    s = c["step_scores"][-1] if reduction == "last" else min(c["step_scores"])
                    (right if ok else wrong).append(s)
                if right and wrong:
                    wins = sum(1.0 if r > w else 0.5 if r == w else 0.0 for r in right for w in wrong)
                    aucs.append(wins / (len(right) * len(wrong)))
        mine = sum(aucs) / len(aucs)
        theirs = float(row[f"within_auc_{reduction}"])
        agree = abs(mine - theirs) <= 1e-9
        bad += not agree
        print(f"{dataset}/{model} within_auc_{reduction}: table {theirs:.6f}, recomputed {mine:.6f} over "
              f"{len(aucs)} problems {'agree' if agree else 'DIFFER'}")
sys.exit(1 if bad else 0)
