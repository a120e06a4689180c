"""From scored candidates to the metrics tables: accuracy and FLOPs per (n, seed, aggregation, subset), and each
problem's outcome per (n, seed, aggregation) for the claims' bootstrap.

FLOPs follow the paper's convention (docs/design.md, "FLOPs"): every candidate pays for its prompt and its own
tokens, as if nothing were shared between candidates, so sampling's FLOPs at n are n times the cost of one
candidate (the paper's Tables 1, 3 and 4 are exactly proportional to n). A tree search pays the prompt once
per beam it starts (each child of the root) and every node it generated, dropped ones included, attending to
its context. What a prefix-caching engine really spends (the prompt once per question, the first n candidates
as generated) is kept apart in the `*_prefix_shared` columns.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

from infscale.core.grading import grader_kind, is_correct, normalize_answer
from infscale.evaluation.aggregation import aggregate, reduce_step_scores, subsample
from infscale.evaluation.flops import FlopsCount, ModelShape, decode_flops, prefill_flops, scoring_flops
from infscale.evaluation.pass_at_k import candidate_right, problem_coverage, right_flags
from infscale.evaluation.verifier import within_problem_auc

EASY_LEVELS, HARD_LEVELS = (1, 2), (3, 4, 5)
VOTES = ("majority", "weighted_majority")  # the aggregations Theorems 1-2 predict a limit for


def model_shape(path: str) -> ModelShape:
    """Shape of a checkpoint with its exact non-embedding parameter count: the count its training recorded
    (training_summary.json; read without importing torch, seconds a metrics job), else the model built on the meta
    device (no weights)."""
    import json
    from pathlib import Path

    summary = Path(path) / "training_summary.json"
    recorded = json.loads(summary.read_text()).get("non_embedding_params") if summary.exists() else None
    if recorded is not None:
        config = json.loads((Path(path) / "config.json").read_text())
        return ModelShape.from_hf_config(config, non_embedding_params=int(recorded))
    import torch
    from transformers import AutoConfig, AutoModel

    from infscale.core.models import non_embedding_params_of

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return ModelShape.from_hf_config(config, non_embedding_params=non_embedding_params_of(model))


def is_tree_record(record: dict) -> bool:
    return "cost" in record


def candidates_for(record: dict, n: int) -> list[dict]:
    """The candidates of budget n: the first n of a sampling run; all finished paths of a tree search
    (run at that budget, it may have fewer than n; beam search and DVTS may have more)."""
    return record["candidates"] if is_tree_record(record) else subsample(record["candidates"], n)


def _prm_cost(prm: ModelShape | None, tokens: Iterable[int]) -> float:
    return sum(scoring_flops(prm, t) for t in tokens) if prm is not None else 0.0


def problem_flops(record: dict, n: int, policy: ModelShape, prm: ModelShape | None) -> FlopsCount:
    """FLOPs of one problem at budget n in the paper's convention (module docstring).

    Sampling: n times the mean cost of one candidate of this problem (its prompt, its own tokens, its PRM read),
    the mean taken over every candidate generated for it, so the cost is exactly proportional to n.
    Tree search: the prompt once per child of the root, every generated node after its context, every PRM read.
    """
    p = record["prompt_tokens"]
    if is_tree_record(record):
        beams = sum(1 for node in record.get("tree", []) if node["parent"] is None)
        return FlopsCount(policy_prefill=beams * prefill_flops(policy, p),
                          policy_decode=sum(decode_flops(policy, ctx, gen) for ctx, gen in record["cost"]["decode"]),
                          prm=_prm_cost(prm, record["cost"]["prm_tokens"]))
    every = record["candidates"]
    if not every:
        raise ValueError(f"problem {record['id']}: no candidates")
    subsample(every, n)  # checks that n candidates exist
    mean_decode = math.fsum(decode_flops(policy, p, c["tokens"]) for c in every) / len(every)
    mean_prm = _prm_cost(prm, [c["prm_tokens"] for c in every if "prm_tokens" in c]) / len(every)
    return FlopsCount(policy_prefill=n * prefill_flops(policy, p), policy_decode=n * mean_decode, prm=n * mean_prm)


def problem_flops_prefix_shared(record: dict, n: int, policy: ModelShape, prm: ModelShape | None) -> FlopsCount:
    """What an engine with a prefix cache spends on one problem at budget n: the prompt once, then the first n
    candidates' own tokens (sampling) or every generated node (tree search), and the PRM reads."""
    p = record["prompt_tokens"]
    if is_tree_record(record):
        decode = sum(decode_flops(policy, ctx, gen) for ctx, gen in record["cost"]["decode"])
        prm_tokens = record["cost"]["prm_tokens"]
    else:
        candidates = subsample(record["candidates"], n)
        decode = sum(decode_flops(policy, p, c["tokens"]) for c in candidates)
        prm_tokens = [c["prm_tokens"] for c in candidates if "prm_tokens" in c]
    return FlopsCount(policy_prefill=prefill_flops(policy, p), policy_decode=decode, prm=_prm_cost(prm, prm_tokens))


def _weights(record: dict, candidates: list[dict], aggregation: str, reduction: str) -> list[float] | None:
    if aggregation == "majority":
        return None
    missing = [i for i, c in enumerate(candidates) if "step_scores" not in c]
    if missing:
        raise ValueError(f"problem {record['id']}: candidate {missing[0]} has no PRM scores; "
                         f"{aggregation} needs scored candidates")
    return [reduce_step_scores(c["step_scores"], reduction) for c in candidates]


def chosen_correct(record: dict, candidates: list[dict], aggregation: str, grader: str, reduction: str) -> bool:
    """Whether the answer `aggregation` picks among `candidates` is right. A candidate without a stated answer
    (answer None: grading.candidate_answer) never votes and is never picked. For code the answer is the
    candidate's behaviour (evaluation.code_grading) and the pick is right when the first candidate with that
    behaviour passed its asserts."""
    weights = _weights(record, candidates, aggregation, reduction)
    chosen = aggregate([c["answer"] for c in candidates], weights, aggregation,
                       key=lambda a: normalize_answer(a, grader))
    if grader_kind(grader) == "code":
        picked = next((c for c in candidates if chosen is not None and c["answer"] == chosen), None)
        return picked is not None and candidate_right(picked, record["reference"], grader)
    return is_correct(chosen, record["reference"], grader)


def problem_correct(record: dict, n: int, aggregation: str, grader: str, reduction: str) -> bool:
    return chosen_correct(record, candidates_for(record, n), aggregation, grader, reduction)


def limit_correct(record: dict, candidates: list[dict], aggregation: str, grader: str, reduction: str) -> bool:
    """Theorems 1-2: whether the answer the vote converges to as n -> infinity is right, predicted from the
    empirical answer distribution of `candidates` (Theorem 1: its mode; Theorem 2: the answer of largest
    probability x mean weight, i.e. of largest total weight). As a plug-in it is the vote over these candidates."""
    if aggregation not in VOTES:
        raise ValueError(f"no limit theorem for {aggregation!r}; only for {', '.join(VOTES)}")
    return chosen_correct(record, candidates, aggregation, grader, reduction)


def vote_limit(records: list[dict], aggregation: str, grader: str, reduction: str) -> float:
    """Share of problems whose vote limit (limit_correct) is right, predicted from all candidates drawn."""
    return sum(limit_correct(r, r["candidates"], aggregation, grader, reduction) for r in records) / len(records)


def generated_tokens(record: dict, n: int) -> int:
    if is_tree_record(record):
        return sum(gen for _, gen in record["cost"]["decode"])
    return sum(c["tokens"] for c in subsample(record["candidates"], n))


def subsets(records: list[dict]) -> dict[str, list[dict]]:
    """`all`, and `easy`/`hard` when every problem has a difficulty level."""
    out = {"all": records}
    if records and all(r.get("level") is not None for r in records):
        out["easy"] = [r for r in records if int(r["level"]) in EASY_LEVELS]
        out["hard"] = [r for r in records if int(r["level"]) in HARD_LEVELS]
    return {k: v for k, v in out.items() if v}


def invalid_share(records: list[dict], n: int) -> float:
    """Share of the candidates at budget n that state no answer (NaN when there is no candidate at all)."""
    candidates = [c for r in records for c in candidates_for(r, n)]
    return sum(c["answer"] is None for c in candidates) / len(candidates) if candidates else math.nan


def verifier_auc(records: list[dict], n: int, grader: str, reduction: str) -> tuple[float, int]:
    """The PRM's within-problem AUC on the candidates at budget n (infscale.evaluation.verifier), and over how many
    problems; (NaN, 0) when the candidates are not scored."""
    groups = []
    for r in records:
        candidates = candidates_for(r, n)
        if not candidates or any("step_scores" not in c for c in candidates):
            return math.nan, 0
        groups.append(([reduce_step_scores(c["step_scores"], reduction) for c in candidates],
                       [candidate_right(c, r["reference"], grader) for c in candidates]))
    return within_problem_auc(groups)


Outcomes = dict[tuple[int, str], list[bool]]  # (n, aggregation) -> whether each record's chosen answer is right


def outcomes(records: list[dict], budgets: Iterable[int], aggregations: Iterable[str], grader: str,
             reduction: str) -> Outcomes:
    """Each problem graded once per (n, aggregation): the metrics and the per-problem rows both read these."""
    return {(n, a): [problem_correct(r, n, a, grader, reduction) for r in records]
            for n in budgets for a in aggregations}


def metrics_rows(records: list[dict], *, dataset: str, model: str, strategy: str, seed: int, budgets: Iterable[int],
                 aggregations: Iterable[str], reduction: str, grader: str, policy: ModelShape,
                 prm: ModelShape | None, graded: Outcomes | None = None) -> list[dict]:
    """Metrics table rows of one seed's scored records (see docs/design.md for the columns); `graded` is
    `outcomes(...)` of the same arguments when the caller has it already. `coverage` and `coverage_first_n` are
    infscale.evaluation.pass_at_k's; `vote_limit` is the accuracy Theorems 1-2 predict for majority and weighted
    majority as n -> infinity from all candidates drawn (sampling; NaN for other rows)."""
    budgets, aggregations = list(budgets), list(aggregations)
    graded = graded if graded is not None else outcomes(records, budgets, aggregations, grader, reduction)
    position = {id(r): i for i, r in enumerate(records)}
    limits: dict[tuple[str, str], float] = {}  # (subset, vote) -> vote_limit: the same at every n
    right = {id(r): right_flags(r, grader) for r in records}  # each candidate graded once
    rows = []
    for n in budgets:
        auc, auc_problems = verifier_auc(records, n, grader, reduction)
        for subset, recs in subsets(records).items():
            paper = sum((problem_flops(r, n, policy, prm) for r in recs), FlopsCount())
            shared = sum((problem_flops_prefix_shared(r, n, policy, prm) for r in recs), FlopsCount())
            flops = {k: v / len(recs) for k, v in paper.as_dict().items()}
            flops["policy_flops_prefix_shared"] = shared.policy / len(recs)
            flops["total_flops_prefix_shared"] = shared.total / len(recs)
            tokens = sum(generated_tokens(r, n) for r in recs) / len(recs)
            cover = [problem_coverage(right[id(r)], n, tree=is_tree_record(r)) for r in recs]
            coverage = {"coverage": math.fsum(c for c, _ in cover) / len(recs),
                        "coverage_first_n": math.fsum(f for _, f in cover) / len(recs)}
            for aggregation in aggregations:
                if strategy == "sampling" and aggregation in VOTES and (subset, aggregation) not in limits:
                    limits[subset, aggregation] = vote_limit(recs, aggregation, grader, reduction)
                limit = limits.get((subset, aggregation), math.nan)
                accuracy = sum(graded[n, aggregation][position[id(r)]] for r in recs) / len(recs)
                rows.append({"dataset": dataset, "model": model, "strategy": strategy, "n": n, "seed": seed,
                             "aggregation": aggregation, "subset": subset, "n_problems": len(recs),
                             "accuracy": accuracy, "error": 1.0 - accuracy, **coverage, "vote_limit": limit,
                             "params": policy.non_embedding_params, **flops, "generated_tokens": tokens,
                             "invalid_share": invalid_share(recs, n), "prm_auc": auc,
                             "prm_auc_problems": auc_problems})
    return rows


def problem_rows(records: list[dict], *, dataset: str, model: str, strategy: str, seed: int, budgets: Iterable[int],
                 aggregations: Iterable[str], reduction: str, grader: str,
                 graded: Outcomes | None = None) -> list[dict]:
    """One row per (n, aggregation, problem): whether the chosen answer is right (kind "budget"), for the
    claims' paired bootstrap over problems.

    Sampling also gets the rows of Theorems 1-2 (claim 9) at half its largest budget h: the answer majority
    and weighted majority voting converge to, predicted from the empirical answer distribution (and weights) of
    the first h candidates (kind "limit_predicted"), and the vote measured on the other h (kind
    "half_measured")."""
    budgets, aggregations = list(budgets), list(aggregations)
    graded = graded if graded is not None else outcomes(records, budgets, aggregations, grader, reduction)
    rows = []

    def add(kind, n, aggregation, record, correct):
        rows.append({"dataset": dataset, "model": model, "strategy": strategy, "seed": seed, "kind": kind, "n": n,
                     "aggregation": aggregation, "id": str(record["id"]), "level": record.get("level"),
                     "correct": int(correct)})

    for n in budgets:
        for aggregation in aggregations:
            for r, correct in zip(records, graded[n, aggregation]):
                add("budget", n, aggregation, r, correct)
    largest = max(budgets, default=0)
    if strategy == "sampling" and largest >= 4:
        half = largest // 2
        for aggregation in (a for a in aggregations if a in VOTES):
            for r in records:
                first, other = r["candidates"][:half], r["candidates"][half:2 * half]
                add("limit_predicted", half, aggregation, r, limit_correct(r, first, aggregation, grader, reduction))
                add("half_measured", half, aggregation, r, chosen_correct(r, other, aggregation, grader, reduction))
    return rows
