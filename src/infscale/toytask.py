"""The embedded toy task: multi-step arithmetic chains with difficulty levels.

A level-k problem applies k additions/subtractions of a one-digit operand to a two-digit start:
"Compute 37 + 5 - 8." Each step of the solution carries one operation, so every step's arithmetic is
local (two numbers just written) and a tiny model learns it in minutes of CPU training. Word templates and
larger operands were tried first and were not learnable at that budget (see docs/design.md).
Running values stay in [0, 199] so answers are non-negative integers.
"""
from __future__ import annotations

import random

from .stepformat import format_solution

MIN_LEVEL, MAX_LEVEL = 1, 5


def make_problem(rng: random.Random, level: int) -> dict:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"toy level must be in [{MIN_LEVEL}, {MAX_LEVEL}], got {level}")
    value = rng.randint(10, 99)
    expr, steps = [str(value)], []
    for _ in range(level):
        operand = rng.randint(1, 9)
        op = "-" if value - operand >= 0 and rng.random() < 0.5 else "+"
        new = value + operand if op == "+" else value - operand
        steps.append(f"{value} {op} {operand} = {new}")
        expr.append(f"{op} {operand}")
        value = new
    question = f"Compute {' '.join(expr)}."
    answer = str(value)
    return {"question": question, "answer": answer, "level": level, "solution": format_solution(steps, answer)}


def make_split(n: int, seed: int, levels: tuple[int, int] = (MIN_LEVEL, MAX_LEVEL), split: str = "train") -> list[dict]:
    """`n` problems with levels spread uniformly over `levels`; ids are stable for a (split, seed)."""
    if n < 1:
        raise ValueError(f"number of toy problems must be positive, got {n}")
    lo, hi = levels
    rng = random.Random(f"toy-{split}-{seed}")
    rows = []
    for i in range(n):
        row = make_problem(rng, lo + i % (hi - lo + 1))
        rows.append({"id": f"toy-{split}-{i}", **row})
    rng.shuffle(rows)
    return rows


def make_splits(n_train: int, n_prm: int, n_test: int, seed: int, levels=(MIN_LEVEL, MAX_LEVEL)) -> dict[str, list[dict]]:
    """Disjoint train / prm / test splits: test questions never appear in the training splits."""
    test = make_split(n_test, seed, levels, "test")
    held_out = {r["question"] for r in test}
    out = {"test": test}
    for split, n in (("train", n_train), ("prm", n_prm)):
        rows = [r for r in make_split(int(n * 1.3) + 10, seed, levels, split) if r["question"] not in held_out]
        if len(rows) < n:  # only for tiny ranges; say so rather than return fewer rows silently
            raise ValueError(f"could not draw {n} toy {split} problems disjoint from the test split")
        out[split] = rows[:n]
        held_out |= {r["question"] for r in out[split]}
    return out
