"""Inference strategies that produce candidate solutions: greedy and temperature sampling.

Sampling is generated once at the largest budget; a smaller budget n uses the first n candidates, so adding
budgets costs no generation. Tree search (REBASE, MCTS, beam search, DVTS) produces candidates per budget in its
own module.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from infscale.core.policy_format import PolicyFormat
from infscale.search.engine_base import Engine, SamplingParams, derived_seed
from infscale.search.shards import ShardReport, run_in_shards


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
                 seed: int, fmt: PolicyFormat | None = None) -> list[dict]:
    """Candidate records of any strategy: n is samples (sampling), width (REBASE, beam search, DVTS: paths) or
    expansions (MCTS). `fmt` is the policy's format (None: the paper's)."""
    if strategy == "rebase":
        from infscale.search.rebase import run_rebase

        return run_rebase(engine, prm, rows, grader, n, params, seed, fmt)
    if strategy == "mcts":
        from infscale.search.mcts import run_mcts

        return run_mcts(engine, prm, rows, grader, n, params, seed, fmt)
    if strategy == "beam_search":
        from infscale.search.beam_search import run_beam_search

        return run_beam_search(engine, prm, rows, grader, n, params, seed, fmt=fmt)
    if strategy == "dvts":
        from infscale.search.dvts import run_dvts

        return run_dvts(engine, prm, rows, grader, n, params, seed, fmt)
    return generate_candidates(engine, rows, grader, strategy, params, n, seed, fmt)


def run_strategy_in_shards(load: Callable[[], tuple[Engine, object]], rows: list[dict], grader: str, strategy: str,
                           params: dict, n: int, seed: int, shard_size: int, shard_dir: str | Path,
                           stamp: str, fmt: PolicyFormat | None = None) -> tuple[list[dict], ShardReport]:
    """run_strategy over shards of `shard_size` problems, each checkpointed (shards.run_in_shards), so a killed
    job resumes where it stopped. Shard i draws with seed derived_seed(seed, "shard", i): the records depend on
    (seed, shard_size, batch size), not on where a run was interrupted. `load()` returns (engine, PRM or None)
    and is called once, only if some shard is left to compute."""
    loaded = []

    def work(shard: list[dict], i: int) -> list[dict]:
        if not loaded:
            loaded.extend(load())
        engine, prm = loaded
        return run_strategy(engine, prm, shard, grader, strategy, params, n, derived_seed(seed, "shard", i), fmt)

    try:
        return run_in_shards(rows, shard_size, shard_dir, stamp, work)
    finally:
        if loaded:
            loaded[0].close()


def generate_candidates(engine: Engine, rows: list[dict], grader: str, strategy: str, params: dict, n: int,
                        seed: int, fmt: PolicyFormat | None = None) -> list[dict]:
    """One record per problem: the reference, the prompt's token count and the n candidates.
    `grader` names the answer grader (toy, gsm8k, math500); `fmt` the policy's format (None: the paper's)."""
    fmt = fmt or PolicyFormat()
    sp = sampling_params(strategy, params, n, seed)
    gens = engine.generate([fmt.render_prompt(r["question"], getattr(engine, "tokenizer", None)) for r in rows], sp)
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
                 "answer": fmt.candidate_answer(c.text, c.finish_reason, grader)}
                for c in g.completions
            ],
        })
    return records
