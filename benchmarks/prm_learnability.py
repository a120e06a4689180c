"""Can the toy PRM learn to check one step's arithmetic at all? A learnability probe with perfect labels.

Builds toy solutions (train split questions) in which each step's result is wrong with probability 0.3 (off by
1 or 2, the next step starting from the number written), and trains the PRM exactly as `train_prm` does (BCE at
the step tags, initialised from a policy checkpoint) on one of two labels:

- `local`: the step's own arithmetic is right for the numbers written (what a verifier has to see);
- `even`: the step's result is even (a control that needs no arithmetic: it shows the training itself works).

The answer line is labelled 1. Reports the training loss at the start and end against the loss of predicting the
label's base rate per position (what a model that learned nothing reaches), and writes
benchmarks/results/prm_learnability.md (one row per run, appended).

    python benchmarks/prm_learnability.py --init results/models/policy/pythia-m --labels local --steps 2000
"""
from __future__ import annotations

import argparse
import json
import math
import random
import tempfile
import time
from pathlib import Path

from infscale.core.stepformat import format_solution, split_steps
from infscale.core.toytask import parse_question
from infscale.training.prm_data import to_math_shepherd_row
from infscale.training.prm_training import load_prm_for_training, train_prm

ROOT = Path(__file__).resolve().parents[1]


def probe_rows(questions: list[str], labels: str, seed: int, error_rate: float = 0.3) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for q in questions:
        value, ops = parse_question(q)
        lines, targets = [], []
        for op, b in ops:
            new = value + b if op == "+" else value - b
            wrong = rng.random() < error_rate
            if wrong:
                new = max(0, new + rng.choice([-2, -1, 1, 2]))
            lines.append(f"{value} {op} {b} = {new}")
            targets.append(float(new % 2 == 0) if labels == "even" else float(not wrong))
            value = new
        steps = split_steps(format_solution(lines, str(value)))
        targets.append(1.0)
        rows.append(to_math_shepherd_row(q, steps, targets))
    return rows


def base_rate_loss(rows: list[dict]) -> float:
    """BCE of the best constant per step position (step 1, 2, ..., the answer line): a model that only counts."""
    by_pos: dict[tuple[int, bool], list[float]] = {}
    for r in rows:
        soft = r["soft"]
        for k, y in enumerate(soft):
            by_pos.setdefault((k, k == len(soft) - 1), []).append(y)
    total = n = 0.0
    for ys in by_pos.values():
        p = min(max(sum(ys) / len(ys), 1e-9), 1 - 1e-9)
        total += -sum(y * math.log(p) + (1 - y) * math.log(1 - p) for y in ys)
        n += len(ys)
    return total / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--init", type=Path, required=True, help="policy checkpoint the PRM starts from")
    ap.add_argument("--data", type=Path, default=ROOT / "results" / "data" / "toy" / "train.jsonl")
    ap.add_argument("--labels", choices=("local", "even"), default="local")
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "prm_learnability.md")
    a = ap.parse_args()
    from transformers import AutoTokenizer

    questions = [json.loads(line)["question"] for line in a.data.read_text().splitlines()[: a.rows]]
    rows = probe_rows(questions, a.labels, a.seed)
    tokenizer = AutoTokenizer.from_pretrained(a.init)
    model = load_prm_for_training(str(a.init), None, tokenizer, a.seed)
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_prm(rows, tokenizer, model, {"steps": a.steps, "batch_size": 32, "lr": a.lr,
                                                     "warmup_steps": 40}, Path(tmp) / "prm", a.seed)
    losses = [h["loss"] for h in summary["log"]]
    tail = losses[-max(1, len(losses) // 10):]
    row = (f"| {a.init.name} | {a.labels} | {len(rows)} | {a.steps} | {a.lr:g} | {losses[0]:.3f} | "
           f"{sum(tail) / len(tail):.3f} | {base_rate_loss(rows):.3f} | {time.time() - start:.0f} |")
    if not a.out.exists():
        a.out.write_text(
            "# Can the PRM learn a step check? (benchmarks/prm_learnability.py)\n\n"
            "Perfect labels on toy solutions with a 30% chance of a wrong result per step. `local`: the step's own "
            "arithmetic is right; `even`: the result is even (control, no arithmetic). A PRM that learned nothing "
            "ends at the base-rate loss (the best constant per step position).\n\n"
            "| init | labels | rows | steps | lr | first loss | last 10% loss | base-rate loss | seconds |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
    with a.out.open("a") as f:
        f.write(row + "\n")
    print(row)


if __name__ == "__main__":
    main()
