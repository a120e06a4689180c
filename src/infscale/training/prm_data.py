"""Math-Shepherd labels from a policy's own rollouts (Wang et al. 2024).

Solutions to label are sampled from one or more policies (`sample_solutions`); a completer policy then writes
`rollouts` completions from step prefixes of each (`label_solutions`). A step's soft label is the fraction of
completions that reach the reference answer, its hard label is `+` when any does. The final step is labelled
by the solution's own answer.

Two ways to choose the prefixes:
- `linear` (Math-Shepherd): every proper prefix of every solution: steps x rollouts generations per solution.
- `binary` (OmegaPRM, Luo et al. 2024): a solution whose own answer is right has every step `+` (it is a
  successful rollout of each of its prefixes); for a wrong one, binary search for the first prefix whose
  rollouts all fail, assuming a prefix stays failed once it is: about log2(steps) x rollouts generations per
  wrong solution, none per right one. Steps before that prefix's last step are `+`, the rest `-`; the soft label
  of a step no rollout tested is 1.0 or 0.0 accordingly.

`step_labels: exact` replaces the rollouts by the toy task's exact step correctness (toytask.exact_step_labels):
an ablation that measures what perfect labels would give, never the paper's method.
"""
from __future__ import annotations

from infscale.core.grading import extract_answer, is_correct
from infscale.core.stepformat import STEP_TAG, format_prompt, split_steps
from infscale.search.engine_base import Engine, SamplingParams

SEARCHES = ("linear", "binary")
STEP_LABELS = ("rollouts", "exact")


def to_math_shepherd_row(question: str, steps: list[str], soft: list[float], tag: str = STEP_TAG) -> dict:
    """The row in the released data set's format (`input`, `label`), plus our `soft` estimates."""
    solution = "".join(steps)
    label = solution
    # Replace tags right to left so earlier offsets stay valid.
    positions = [i for i in range(len(solution)) if solution.startswith(tag, i)]
    for pos, s in zip(reversed(positions), reversed(soft)):
        label = label[:pos] + ("+" if s > 0 else "-") + label[pos + len(tag):]
    prompt = format_prompt(question)
    return {"input": prompt + solution, "label": prompt + label, "soft": soft}


def sample_solutions(engine: Engine, rows: list[dict], samples: int, max_new_tokens: int, temperature: float,
                     seed: int, source: str | None = None) -> list[dict]:
    """`samples` solutions per row (each with `question` and `answer`), finished ones only (an unfinished one,
    cut by the length limit, has no final tag to label): [{row, steps, source}]."""
    prompts = [format_prompt(r["question"]) for r in rows]
    gens = engine.generate(prompts, SamplingParams(n=samples, temperature=temperature,
                                                   max_new_tokens=max_new_tokens, seed=seed))
    items = []
    for r, gen in zip(rows, gens):
        for c in gen.completions:
            steps = [s for s in split_steps(c.text) if s.strip()]
            if steps and steps[-1].endswith(STEP_TAG) and c.finish_reason != "length":
                items.append({"row": r, "steps": steps, "source": source})
    return items


def _rollout_hits(engine: Engine, prompts: list[str], prefixes: list[str], answers: list[str], grader: str,
                  rollouts: int, max_new_tokens: int, temperature: float, seed: int) -> list[float]:
    """Fraction of `rollouts` completions of each prompt that reach its answer (one batched call)."""
    if not prompts:
        return []
    outs = engine.generate(prompts, SamplingParams(n=rollouts, temperature=temperature,
                                                   max_new_tokens=max_new_tokens, seed=seed))
    fractions = []
    for gen, prefix, answer in zip(outs, prefixes, answers):
        hits = [is_correct(extract_answer(prefix + c.text, grader), answer, grader) for c in gen.completions]
        fractions.append(sum(hits) / len(hits))
    return fractions


def _final_right(item: dict, grader: str) -> bool:
    return is_correct(extract_answer("".join(item["steps"]), grader), item["row"]["answer"], grader)


def _linear_soft(engine, items, grader, rollouts, max_new_tokens, temperature, seed) -> list[list[float]]:
    prompts, prefixes, answers, owner = [], [], [], []
    for j, it in enumerate(items):
        for k in range(1, len(it["steps"])):
            prefix = "".join(it["steps"][:k])
            prompts.append(format_prompt(it["row"]["question"]) + prefix)
            prefixes.append(prefix)
            answers.append(it["row"]["answer"])
            owner.append(j)
    fractions = _rollout_hits(engine, prompts, prefixes, answers, grader, rollouts, max_new_tokens, temperature, seed)
    soft = [[] for _ in items]
    for j, f in zip(owner, fractions):
        soft[j].append(f)
    return soft


def _binary_soft(engine, items, grader, rollouts, max_new_tokens, temperature, seed) -> list[list[float]]:
    soft: list[list[float] | None] = [None] * len(items)
    measured: list[dict] = [{} for _ in items]
    # Search state of each wrong solution: the first failing prefix lies in [lo, hi]; prefix len(steps) fails.
    bounds = {}
    for j, it in enumerate(items):
        if _final_right(it, grader):
            soft[j] = [1.0] * (len(it["steps"]) - 1)
        else:
            bounds[j] = [1, len(it["steps"])]
    round_ = 0
    while any(lo < hi for lo, hi in bounds.values()):
        active = [j for j, (lo, hi) in bounds.items() if lo < hi]
        mids = {j: (bounds[j][0] + bounds[j][1]) // 2 for j in active}
        prefixes = ["".join(items[j]["steps"][: mids[j]]) for j in active]
        prompts = [format_prompt(items[j]["row"]["question"]) + p for j, p in zip(active, prefixes)]
        fractions = _rollout_hits(engine, prompts, prefixes, [items[j]["row"]["answer"] for j in active], grader,
                                  rollouts, max_new_tokens, temperature, seed + round_)
        for j, f in zip(active, fractions):
            measured[j][mids[j]] = f
            if f > 0:
                bounds[j][0] = mids[j] + 1
            else:
                bounds[j][1] = mids[j]
        round_ += 1
    for j, (_, first_failed) in bounds.items():
        # prefix k (its last step is step k) is right for k < first_failed
        soft[j] = [measured[j].get(k, 1.0 if k < first_failed else 0.0) for k in range(1, len(items[j]["steps"]))]
    return soft


def label_solutions(engine: Engine | None, items: list[dict], grader: str, rollouts: int, max_new_tokens: int,
                    temperature: float, seed: int, search: str = "linear", step_labels: str = "rollouts") -> list[dict]:
    """Math-Shepherd rows for sampled solutions (`sample_solutions`), `engine` the completer."""
    if search not in SEARCHES:
        raise ValueError(f"prm search must be one of {SEARCHES}, got {search!r}")
    if step_labels not in STEP_LABELS:
        raise ValueError(f"prm step_labels must be one of {STEP_LABELS}, got {step_labels!r}")
    if step_labels == "exact":
        from infscale.core.toytask import exact_step_labels

        soft = [exact_step_labels(it["row"]["question"], it["steps"])[:-1] for it in items]
    elif search == "linear":
        soft = _linear_soft(engine, items, grader, rollouts, max_new_tokens, temperature, seed)
    else:
        soft = _binary_soft(engine, items, grader, rollouts, max_new_tokens, temperature, seed)
    out = []
    for it, s in zip(items, soft):
        s = s + [1.0 if _final_right(it, grader) else 0.0]  # the last step: the solution's own answer
        row = {**to_math_shepherd_row(it["row"]["question"], it["steps"], s), "id": it["row"].get("id")}
        if it.get("source") is not None:
            row["source"] = it["source"]
        out.append(row)
    return out


def label_with_rollouts(engine: Engine, rows: list[dict], grader: str, samples: int, rollouts: int,
                        max_new_tokens: int, temperature: float, seed: int, search: str = "linear") -> list[dict]:
    """Math-Shepherd rows for `rows` (each with `question` and `answer`): one row per sampled solution, the
    same policy sampling and completing."""
    items = sample_solutions(engine, rows, samples, max_new_tokens, temperature, seed)
    return label_solutions(engine, items, grader, rollouts, max_new_tokens, temperature, seed + 1, search)
