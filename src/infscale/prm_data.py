"""Math-Shepherd labels from a policy's own rollouts (Wang et al. 2024).

For each training question the policy writes solutions; from every step prefix of a solution it writes
`rollouts` completions. A step's soft label is the fraction of completions that reach the reference answer,
its hard label is `+` when any does. The final step is labelled by the solution's own answer.
"""
from __future__ import annotations

from .engines import Engine, SamplingParams
from .grading import extract_answer, is_correct
from .stepformat import STEP_TAG, format_prompt, split_steps


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


def label_with_rollouts(engine: Engine, rows: list[dict], grader: str, samples: int, rollouts: int,
                        max_new_tokens: int, temperature: float, seed: int) -> list[dict]:
    """Math-Shepherd rows for `rows` (each with `question` and `answer`): one row per finished sampled solution.

    Solutions are sampled with `seed` and the rollouts (one batched call) with `seed + 1`."""
    prompts = [format_prompt(r["question"]) for r in rows]
    solutions = engine.generate(prompts, SamplingParams(n=samples, temperature=temperature,
                                                        max_new_tokens=max_new_tokens, seed=seed))
    # Every (solution, proper step prefix) becomes one rollout prompt; all are generated in one batched call.
    items, rollout_prompts = [], []
    for r, prompt, gen in zip(rows, prompts, solutions):
        for c in gen.completions:
            steps = [s for s in split_steps(c.text) if s.strip()]
            if not steps or not steps[-1].endswith(STEP_TAG):
                continue  # unfinished solution (hit the length limit): no final tag to label
            items.append((r, steps))
            for k in range(1, len(steps)):
                rollout_prompts.append(prompt + "".join(steps[:k]))
    budget = max_new_tokens
    outs = engine.generate(rollout_prompts, SamplingParams(n=rollouts, temperature=temperature,
                                                           max_new_tokens=budget, seed=seed + 1)) if rollout_prompts else []
    out_rows, cursor = [], 0
    for r, steps in items:
        soft = []
        for k in range(1, len(steps)):
            gen = outs[cursor]
            cursor += 1
            prefix = "".join(steps[:k])
            hits = [is_correct(extract_answer(prefix + c.text, grader), r["answer"], grader) for c in gen.completions]
            soft.append(sum(hits) / len(hits))
        final_ok = is_correct(extract_answer("".join(steps), grader), r["answer"], grader)
        soft.append(1.0 if final_ok else 0.0)
        out_rows.append({**to_math_shepherd_row(r["question"], steps, soft), "id": r.get("id")})
    return out_rows
