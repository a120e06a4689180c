"""Inference strategies that produce candidate solutions: greedy and temperature sampling.

Sampling is generated once at the largest budget; a smaller budget n uses the first n candidates, so adding
budgets costs no generation. Tree search (REBASE, MCTS) produces candidates per budget in its own module.
"""
from __future__ import annotations

from .engines import Engine, SamplingParams
from .grading import extract_answer
from .stepformat import format_prompt

STRATEGIES = ("greedy", "sampling", "rebase", "mcts")
PREFIX_STRATEGIES = ("greedy", "sampling")  # a smaller budget is a prefix of the candidates of a larger one
TREE_STRATEGIES = ("rebase", "mcts")  # need the PRM while generating; one run per budget


def sampling_params(strategy: str, params: dict, n: int, seed: int) -> SamplingParams:
    if strategy == "greedy":
        if n != 1:
            raise ValueError(f"greedy produces one candidate; got n={n}")
        return SamplingParams(n=1, temperature=0.0, max_new_tokens=int(params["max_new_tokens"]), seed=seed)
    if strategy == "sampling":
        return SamplingParams(n=n, temperature=float(params["temperature"]), top_p=float(params.get("top_p", 1.0)),
                              max_new_tokens=int(params["max_new_tokens"]), seed=seed)
    raise ValueError(f"unknown strategy {strategy!r} for sampling parameters; known: greedy, sampling")


def run_strategy(engine: Engine, prm, rows: list[dict], grader: str, strategy: str, params: dict, n: int,
                 seed: int) -> list[dict]:
    """Candidate records of any strategy: n is samples (sampling), width (REBASE) or expansions (MCTS)."""
    if strategy == "rebase":
        from .rebase import run_rebase

        return run_rebase(engine, prm, rows, grader, n, params, seed)
    if strategy == "mcts":
        from .mcts import run_mcts

        return run_mcts(engine, prm, rows, grader, n, params, seed)
    return generate_candidates(engine, rows, grader, strategy, params, n, seed)


def generate_candidates(engine: Engine, rows: list[dict], grader: str, strategy: str, params: dict, n: int,
                        seed: int) -> list[dict]:
    """One record per problem: the reference, the prompt's token count and the n candidates.
    `grader` names the answer grader (toy, gsm8k, math500)."""
    sp = sampling_params(strategy, params, n, seed)
    gens = engine.generate([format_prompt(r["question"]) for r in rows], sp)
    records = []
    for r, g in zip(rows, gens):
        records.append({
            "id": r["id"],
            "question": r["question"],
            "reference": r["answer"],  # rows are in our schema (data.prepare_split): the reference itself
            "level": r.get("level"),
            "prompt_tokens": g.prompt_tokens,
            "candidates": [
                {"text": c.text, "tokens": c.tokens, "finish_reason": c.finish_reason,
                 "answer": extract_answer(c.text, grader)}
                for c in g.completions
            ],
        })
    return records
