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
import re

from infscale.core.stepformat import STEP_TAG, format_solution

MIN_LEVEL, MAX_LEVEL = 1, 5


def _next_operation(rng: random.Random, value: int, carry_rate: float) -> tuple[str, int]:
    """An operation (op, operand) on `value`; it carries or borrows across the tens digit with
    probability `carry_rate` (when both kinds are possible): carries are what tiny models learn last."""
    options = [(op, b) for op in "+-" for b in range(1, 10) if op == "+" or value - b >= 0]
    def crosses(op: str, b: int) -> bool:
        return (value + b) // 10 != value // 10 if op == "+" else (value - b) // 10 != value // 10

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
    """Test, prm and train splits with no question in two of them (the training splits may repeat a
    question, as a real data set does). The small splits are drawn first, so a large train split that
    exhausts the easy levels' few distinct questions cannot starve them."""
    out, held_out = {}, set()
    for split, n in (("test", n_test), ("prm", n_prm), ("train", n_train)):
        rows, size = [], n
        for _ in range(6):  # draw more until enough problems are new to this split
            rows = [r for r in make_split(size, seed, levels, split, carry_rate) if r["question"] not in held_out]
            if len(rows) >= n:
                break
            size *= 2
        if len(rows) < n:
            raise ValueError(f"could not draw {n} toy {split} problems disjoint from the other splits; "
                             f"levels {levels} with carry_rate {carry_rate} have too few distinct questions")
        out[split] = rows[:n]
        held_out |= {r["question"] for r in out[split]}
    return out


_STEP_RE = re.compile(r"^\s*Step (\d+): (\d+) ([+-]) (\d+) = (\d+)\s*$")
_ANSWER_RE = re.compile(r"^\s*The answer is:?\s*(-?\d+)\s*$")
_QUESTION_RE = re.compile(r"^Compute (\d+)((?: [+-] \d+)+)\.$")


def parse_question(question: str) -> tuple[int, list[tuple[str, int]]]:
    """(start value, [(op, operand), ...]) of a toy question such as "Compute 56 - 5 + 3."."""
    m = _QUESTION_RE.match(question.strip())
    if not m:
        raise ValueError(f"not a toy question: {question!r}")
    tokens = m.group(2).split()
    return int(m.group(1)), [(tokens[i], int(tokens[i + 1])) for i in range(0, len(tokens), 2)]


def first_wrong_step(question: str, steps: list[str], tag: str = STEP_TAG) -> int | None:
    """Index (0-based) of the first wrong step of a solution to a toy question, None when every step is right.

    Step k (1-based) of the arithmetic is right when it reads "Step k: a op b = c" with a the value so far,
    (op, b) the question's k-th operation and c = a op b; the answer line is right when it follows all the
    operations and states the final value. A step that cannot be parsed, an extra operation, an early or
    missing answer line are wrong. The exact correctness the Math-Shepherd labels estimate."""
    value, ops = parse_question(question)
    for i, raw in enumerate(steps):
        body = raw.replace(tag, "").strip()
        if i < len(ops):
            m = _STEP_RE.match(body)
            op, b = ops[i]
            wrong = not m or int(m.group(1)) != i + 1 or int(m.group(2)) != value
            if wrong or (m.group(3), int(m.group(4))) != (op, b):
                return i
            value = value + b if op == "+" else value - b
            if int(m.group(5)) != value:
                return i
        else:
            m = _ANSWER_RE.match(body)
            return None if (m and i == len(ops) and int(m.group(1)) == value) else i
    return len(steps)  # ended before its answer line: the missing step is the first wrong one


def exact_step_labels(question: str, steps: list[str], tag: str = STEP_TAG) -> list[float]:
    """1.0 for the steps before the first wrong one, 0.0 from it on (a prefix stays wrong once it is):
    the labels a perfect Math-Shepherd completer would give."""
    first = first_wrong_step(question, steps, tag)
    return [1.0 if first is None or i < first else 0.0 for i in range(len(steps))]
