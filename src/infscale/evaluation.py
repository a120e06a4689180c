"""From scored candidates to the metrics table: accuracy and FLOPs per (n, seed, aggregation, subset)."""
from __future__ import annotations

from typing import Iterable

from .aggregation import aggregate, reduce_step_scores, subsample
from .flops import FlopsCount, ModelShape, decode_flops, prefill_flops, scoring_flops
from .grading import is_correct, normalize_answer

EASY_LEVELS, HARD_LEVELS = (1, 2), (3, 4, 5)


def model_shape(path: str) -> ModelShape:
    """Shape of a checkpoint with its exact non-embedding parameter count, built on the meta device (no weights)."""
    import torch
    from transformers import AutoConfig, AutoModel

    from .flops import non_embedding_params_of

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return ModelShape.from_hf_config(config, non_embedding_params=non_embedding_params_of(model))


def candidates_for(record: dict, n: int) -> list[dict]:
    """The candidates of budget n: the first n of a sampling run; all finished paths of a tree search
    (run at that budget, it may have fewer than n)."""
    return record["candidates"] if "cost" in record else subsample(record["candidates"], n)


def problem_flops(record: dict, n: int, policy: ModelShape, prm: ModelShape | None) -> FlopsCount:
    """FLOPs one problem cost at budget n. The prompt is prefilled once per question (prefix caching).
    Sampling: each of the first n candidates is decoded after the prompt and read whole by the PRM.
    Tree search: every generated node, dropped ones included, is decoded after its context, and every
    PRM read during the search is counted (the record's `cost`)."""
    count = FlopsCount(policy_prefill=prefill_flops(policy, record["prompt_tokens"]))
    if "cost" in record:
        count.policy_decode = sum(decode_flops(policy, ctx, gen) for ctx, gen in record["cost"]["decode"])
        prm_tokens = record["cost"]["prm_tokens"]
    else:
        candidates = subsample(record["candidates"], n)
        count.policy_decode = sum(decode_flops(policy, record["prompt_tokens"], c["tokens"]) for c in candidates)
        prm_tokens = [c["prm_tokens"] for c in candidates if "prm_tokens" in c]
    if prm is not None:
        count.prm = sum(scoring_flops(prm, t) for t in prm_tokens)
    return count


def problem_correct(record: dict, n: int, aggregation: str, grader: str, reduction: str) -> bool:
    candidates = candidates_for(record, n)
    answers = [c["answer"] for c in candidates]
    weights = None
    if aggregation != "majority":
        missing = [i for i, c in enumerate(candidates) if "step_scores" not in c]
        if missing:
            raise ValueError(f"problem {record['id']}: candidate {missing[0]} has no PRM scores; "
                             f"{aggregation} needs scored candidates")
        weights = [reduce_step_scores(c["step_scores"], reduction) for c in candidates]
    chosen = aggregate(answers, weights, aggregation, key=lambda a: normalize_answer(a, grader))
    return is_correct(chosen, record["reference"], grader)


def generated_tokens(record: dict, n: int) -> int:
    if "cost" in record:
        return sum(gen for _, gen in record["cost"]["decode"])
    return sum(c["tokens"] for c in subsample(record["candidates"], n))


def subsets(records: list[dict]) -> dict[str, list[dict]]:
    """`all`, and `easy`/`hard` when every problem has a difficulty level."""
    out = {"all": records}
    if records and all(r.get("level") is not None for r in records):
        out["easy"] = [r for r in records if int(r["level"]) in EASY_LEVELS]
        out["hard"] = [r for r in records if int(r["level"]) in HARD_LEVELS]
    return {k: v for k, v in out.items() if v}


def metrics_rows(records: list[dict], *, dataset: str, model: str, strategy: str, seed: int, budgets: Iterable[int],
                 aggregations: Iterable[str], reduction: str, grader: str, policy: ModelShape,
                 prm: ModelShape | None) -> list[dict]:
    """Metrics table rows of one seed's scored records (see docs/design.md for the columns)."""
    rows = []
    for n in budgets:
        for subset, recs in subsets(records).items():
            flops = [problem_flops(r, n, policy, prm) for r in recs]
            tokens = sum(generated_tokens(r, n) for r in recs) / len(recs)
            mean_flops = {k: v / len(recs) for k, v in sum(flops, FlopsCount()).as_dict().items()}
            for aggregation in aggregations:
                accuracy = sum(problem_correct(r, n, aggregation, grader, reduction) for r in recs) / len(recs)
                rows.append({"dataset": dataset, "model": model, "strategy": strategy, "n": n, "seed": seed,
                             "aggregation": aggregation, "subset": subset, "n_problems": len(recs),
                             "accuracy": accuracy, "error": 1.0 - accuracy,
                             "params": policy.non_embedding_params, **mean_flops, "generated_tokens": tokens})
    return rows
