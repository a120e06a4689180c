"""Which toy task and which verifier make the default study show what the paper shows? A design probe.

For one toy shape (solution orders, which orders are carry-free, solutions per question) it trains policies of
the given sizes and training seeds exactly as `train_policy` does, samples the first `--problems` test problems
greedily and at T = 1 (n = 32, as the default), scores every sample with the strongest policy's likelihood
verifier (search/policy_likelihood.py, both token scores) and reports per (policy, training seed):
greedy and majority@k accuracy, best-of-n and weighted majority at n = 1 and 32, the verifier's within-problem
AUC and the ceiling a perfect order-aware step checker reaches on the same candidates. One row per run is
appended to benchmarks/results/toy_paths.md; models are kept in benchmarks/out/toy_paths/ and reused.

    python benchmarks/toy_paths.py --order random --carry-free every_order --models xs s m --train-seeds 0 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from infscale.core.grading import is_correct, normalize_answer
from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.stepformat import split_steps
from infscale.core.toytask import first_wrong_step, make_splits
from infscale.evaluation.aggregation import aggregate
from infscale.evaluation.verifier import within_problem_auc

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "toy_paths"
REPORT = ROOT / "benchmarks" / "results" / "toy_paths.md"
ARCHS = {"xs": {"hidden_size": 32, "num_layers": 2, "num_heads": 2},
         "s": {"hidden_size": 64, "num_layers": 2, "num_heads": 2},
         "m": {"hidden_size": 80, "num_layers": 3, "num_heads": 2},
         "l": {"hidden_size": 96, "num_layers": 4, "num_heads": 2}}
BUDGETS = (1, 2, 4, 8, 16, 32)
SCORERS = ("logprob_min", "margin_min", "logprob_sum", "margin_sum")


def variant_name(a) -> str:
    return f"{a.order}-{a.carry_free}-k{a.solutions}-n{a.n_train}"


def prepare(a, where: Path) -> tuple[Path, Path]:
    from infscale.core.data import training_texts
    from infscale.training.tokenizer import train_tokenizer

    where.mkdir(parents=True, exist_ok=True)
    train, test = where / "train.jsonl", where / "test.jsonl"
    if not test.exists():
        splits = make_splits(a.n_train, 8, 200, 0, (1, 5), 0.0, a.order, a.carry_free, a.solutions)
        write_jsonl(train, splits["train"])
        write_jsonl(test, splits["test"])
    if not (where / "tokenizer").exists():
        train_tokenizer(training_texts(read_jsonl(train)), where / "tokenizer", vocab_size=400)
    return train, test


def policy(a, where: Path, size: str, seed: int, steps: int | None = None) -> Path:
    from infscale.training.launch import run_spec

    steps = steps or a.steps
    out = where / f"{size}-steps{steps}-seed{seed}"
    if not (out / "config.json").exists():
        train = {"steps": steps, "batch_size": 32, "lr": 3.0e-3, "warmup_steps": 50, "dtype": "fp32",
                 "mixed_precision": "no", "max_length": 256, "weight_decay": 0.0, "lr_scheduler": "cosine"}
        t = time.time()
        run_spec({"kind": "policy", "data": str(where / "train.jsonl"), "tokenizer": str(where / "tokenizer"),
                  "arch": ARCHS[size], "base": None, "train": train, "seed": seed, "out": str(out), "threads": 1})
        print(f"trained {out.name} in {time.time() - t:.0f} s", flush=True)
    return out


def samples(model: Path, rows: list[dict]) -> tuple[list[dict], list[dict]]:
    from infscale.search.engines import TransformersEngine
    from infscale.search.strategies import generate_candidates

    cache = model / f"samples{len(rows)}.json"
    if cache.exists():
        return tuple(json.loads(cache.read_text()))
    engine = TransformersEngine(str(model), batch_size=64, threads=1)
    greedy = generate_candidates(engine, rows, "toy", "greedy", {"max_new_tokens": 128}, 1, 0)
    sampled = generate_candidates(engine, rows, "toy", "sampling",
                                  {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 128}, 32, 0)
    cache.write_text(json.dumps([greedy, sampled]))
    return greedy, sampled


def verifier_scores(verifier_model: Path, records: list[dict]) -> dict[str, list[list[float]]]:
    """Per token score and step reduction: the raw per-step scores of every candidate (flattened over records)."""
    from infscale.search.policy_likelihood import PolicyLikelihoodVerifier

    out = {}
    qs = [r["question"] for r in records for _ in r["candidates"]]
    ss = [c["text"] for r in records for c in r["candidates"]]
    for token_score in ("logprob", "margin"):
        for reduction in ("min", "sum"):
            v = PolicyLikelihoodVerifier(str(verifier_model), token_score=token_score, step_reduction=reduction,
                                         threads=1)
            out[f"{token_score}_{reduction}"], _ = v.raw_step_scores(qs, ss)
    return out


def valid(c: dict) -> bool:
    return "The answer is" in c["text"] and c["finish_reason"] != "length" and c["answer"] is not None


def evaluate(greedy, sampled, raw: dict) -> dict:
    key = lambda x: normalize_answer(x, "toy")  # noqa: E731
    row = {"greedy": np.mean([valid(r["candidates"][0]) and is_correct(r["candidates"][0]["answer"], r["reference"],
                                                                       "toy") for r in greedy])}
    flat = 0
    views = []
    for r in sampled:
        cands = r["candidates"]
        answers = [c["answer"] if valid(c) else None for c in cands]
        correct = [a is not None and is_correct(a, r["reference"], "toy") for a in answers]
        steps = [[s for s in split_steps(c["text"]) if s.strip()] for c in cands]
        exact = [1.0 if first_wrong_step(r["question"], st) is None else 0.0 for st in steps]
        total = lambda k, x: (min(x) if k.endswith("min") else sum(x)) if x else -99.0  # noqa: E731
        scores = {k: [total(k, v[flat + i]) for i in range(len(cands))] for k, v in raw.items()}
        flat += len(cands)
        views.append((answers, correct, exact, scores, r))
    for n in BUDGETS:
        row[f"maj@{n}"] = np.mean([_right(v, aggregate(v[0][:n], None, "majority", key)) for v in views])
    for k in raw:
        row[f"auc_{k}"] = within_problem_auc([(v[3][k], v[1]) for v in views])[0]
        for n in (1, 32):
            for agg in ("best_of_n", "weighted_majority"):
                row[f"{agg}@{n}_{k}"] = np.mean([_right(v, aggregate(v[0][:n], _cal(v[3][k][:n]), agg, key))
                                                 for v in views])
    row["ceiling"] = within_problem_auc([(v[2], v[1]) for v in views])[0]
    row["oracle@32"] = np.mean([any(v[1]) for v in views])
    row["sample_acc"] = np.mean([x for v in views for x in v[1]])
    return row


def _cal(xs, a=4.0, b=1.0):
    return [float(1 / (1 + np.exp(-(a + b * x)))) for x in xs]


def _right(view, answer) -> bool:
    answers, correct = view[0], view[1]
    return answer is not None and correct[answers.index(answer)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--order", default="random", choices=["question", "random"])
    ap.add_argument("--carry-free", default="every_order", choices=["question_order", "every_order"])
    ap.add_argument("--solutions", type=int, default=1, help="solutions per training question")
    ap.add_argument("--n-train", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--models", nargs="+", default=["xs", "s", "m"], choices=sorted(ARCHS))
    ap.add_argument("--verifier", default=None, help="size whose likelihood verifies (default: the largest given)")
    ap.add_argument("--verifier-steps", type=int, default=None, help="its training steps (default: --steps)")
    ap.add_argument("--verifier-path", default=None, help="any checkpoint as the verifier instead (e.g. a policy "
                    "trained further from another's checkpoint)")
    ap.add_argument("--train-seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--problems", type=int, default=160)
    ap.add_argument("--only-train", action="store_true")
    a = ap.parse_args(argv)
    where = OUT / variant_name(a)
    prepare(a, where)
    rows = read_jsonl(where / "test.jsonl")[: a.problems]
    verifier_size = a.verifier or a.models[-1]
    for seed in a.train_seeds:
        models = {s: policy(a, where, s, seed) for s in a.models}
        if a.only_train:
            continue
        vsteps = a.verifier_steps or a.steps
        if a.verifier_path:
            verifier = Path(a.verifier_path)
        else:
            verifier = models.get(verifier_size) if vsteps == a.steps and verifier_size in models else \
                policy(a, where, verifier_size, seed, vsteps)
        vname = verifier.name if a.verifier_path else f"{verifier_size}@{vsteps}"
        for size, path in models.items():
            greedy, sampled = samples(path, rows)
            raw = verifier_scores(verifier, sampled)
            res = evaluate(greedy, sampled, raw)
            line = (f"| {variant_name(a)} | {size} | {a.steps} | {seed} | {vname} | "
                    + " | ".join(f"{100 * res[k]:.1f}" for k in ["greedy"] + [f"maj@{n}" for n in BUDGETS])
                    + " | " + " | ".join(f"{res[f'auc_{k}']:.3f}" for k in SCORERS) + f" | {res['ceiling']:.3f} | "
                    + " | ".join(f"{100 * res[f'{agg}@{n}_{k}']:.1f}" for k in SCORERS[:1] + SCORERS[3:]
                                 for agg in ("best_of_n", "weighted_majority") for n in (1, 32))
                    + f" | {100 * res['oracle@32']:.1f} |")
            print(line, flush=True)
            if not REPORT.exists():
                REPORT.write_text(HEADER)
            with REPORT.open("a") as f:
                f.write(line + "\n")


HEADER = """# Toy task and verifier design probe

`python benchmarks/toy_paths.py ...` (module doc). Accuracies in % on the first test problems (sampling seed 0, T =
1); maj@k: majority of the first k samples. AUC: within-problem, of the verifier's last-step score, for token score
(logprob, margin) x step reduction (min: the lowest token of a step, running minimum; sum: the prefix's total);
ceiling: the same AUC of a perfect order-aware step checker. BoN / WMaj: best-of-n and weighted majority at n = 1
and 32 (weights sigmoid(4 + x)), with logprob_min and margin_sum.

"""
COLUMNS = ["toy", "policy", "steps", "train seed", "verifier", "greedy"] + [f"maj@{n}" for n in BUDGETS] + \
    [f"AUC {k}" for k in SCORERS] + ["ceiling"] + [f"{agg}@{n} {k}" for k in SCORERS[:1] + SCORERS[3:]
                                               for agg in ("BoN", "WMaj") for n in (1, 32)] + ["oracle@32"]
HEADER += "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * 5 + "---:|" * (len(COLUMNS) - 5) + "\n"

if __name__ == "__main__":
    main()
