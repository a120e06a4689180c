"""The embedded toy task: multi-step arithmetic chains with difficulty levels.

A level-k problem applies k additions/subtractions of a one-digit operand to a two-digit start:
"Compute 56 - 5 + 3." Each step of the solution carries one operation, so each step's arithmetic is local
(two numbers just written). `carry_rate` sets how often an operation carries or borrows across the tens
digit: carries are what sub-million-parameter models learn last (measured: a 0.1M policy reached 52% greedy
accuracy in 1,500 steps with no carries and 7% with a quarter of them), so the default study uses none.
Word templates and larger operands were not learnable at that budget either. Values stay non-negative.
"""
from __future__ import annotations

import random

from .stepformat import format_solution

MIN_LEVEL, MAX_LEVEL = 1, 5


def _next_operation(rng: random.Random, value: int, carry_rate: float) -> tuple[str, int]:
    """An operation (op, operand) on `value`; it carries or borrows across the tens digit with
    probability `carry_rate` (when both kinds are possible): carries are what tiny models learn last."""
    options = [(op, b) for op in "+-" for b in range(1, 10) if op == "+" or value - b >= 0]
    crosses = lambda op, b: (value + b) // 10 != value // 10 if op == "+" else (value - b) // 10 != value // 10
    carry = [o for o in options if crosses(*o)]
    local = [o for o in options if not crosses(*o)]
    pool = carry if (rng.random() < carry_rate and carry) or not local else local
    return rng.choice(pool)


def make_problem(rng: random.Random, level: int, carry_rate: float = 0.5) -> dict:
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"toy level must be in [{MIN_LEVEL}, {MAX_LEVEL}], got {level}")
    value = rng.randint(10, 99)
    expr, steps = [str(value)], []
    for _ in range(level):
        op, operand = _next_operation(rng, value, carry_rate)
        new = value + operand if op == "+" else value - operand
        steps.append(f"{value} {op} {operand} = {new}")
        expr.append(f"{op} {operand}")
        value = new
    question = f"Compute {' '.join(expr)}."
    answer = str(value)
    return {"question": question, "answer": answer, "level": level, "solution": format_solution(steps, answer)}


def make_split(n: int, seed: int, levels: tuple[int, int] = (MIN_LEVEL, MAX_LEVEL), split: str = "train",
               carry_rate: float = 0.5) -> list[dict]:
    """`n` problems with levels spread uniformly over `levels`; ids are stable for a (split, seed)."""
    if n < 1:
        raise ValueError(f"number of toy problems must be positive, got {n}")
    lo, hi = levels
    rng = random.Random(f"toy-{split}-{seed}")
    rows = []
    for i in range(n):
        row = make_problem(rng, lo + i % (hi - lo + 1), carry_rate)
        rows.append({"id": f"toy-{split}-{i}", **row})
    rng.shuffle(rows)
    return rows


def make_splits(n_train: int, n_prm: int, n_test: int, seed: int, levels=(MIN_LEVEL, MAX_LEVEL),
                carry_rate: float = 0.5) -> dict[str, list[dict]]:
    """Disjoint train / prm / test splits: test questions never appear in the training splits."""
    test = make_split(n_test, seed, levels, "test", carry_rate)
    held_out = {r["question"] for r in test}
    out = {"test": test}
    for split, n in (("train", n_train), ("prm", n_prm)):
        rows = [r for r in make_split(int(n * 1.3) + 10, seed, levels, split, carry_rate) if r["question"] not in held_out]
        if len(rows) < n:  # only for tiny ranges; say so rather than return fewer rows silently
            raise ValueError(f"could not draw {n} toy {split} problems disjoint from the test split")
        out[split] = rows[:n]
        held_out |= {r["question"] for r in out[split]}
    return out
