"""The embedded toy task: multi-step arithmetic chains with difficulty levels and several solution paths.

A level-k problem applies k additions/subtractions of a one-digit operand to a two-digit start:
"Compute 56 - 5 + 3." Each step of a solution carries one operation, so each step's arithmetic is local (two
numbers just written). Additions and subtractions commute, so a solution may apply the question's operations in
any order (`orders: random`, MetaMath's answer augmentation in miniature): the answer does not depend on the
order, and samples that take different orders go wrong in different ways, as the paper's reasoning paths do.

`carry_rate` sets how often an operation carries or borrows across the tens digit in the question's order: carries
are what sub-million-parameter models learn last (measured: a 0.1M policy reached 52% greedy accuracy in 1,500
steps with no carries and 7% with a quarter of them), so the default study uses none. `carry_free: every_order`
draws questions that carry in no order at all (every value of every path stays in the start's decade); with
`question_order` only the question's own order is carry-free, and a training solution in random order takes one of
the orders that do not carry. Word templates and larger operands were not learnable at that budget either.
Values stay non-negative.
"""
from __future__ import annotations

import itertools
import random
import re

from infscale.core.stepformat import STEP_TAG, format_solution

MIN_LEVEL, MAX_LEVEL = 1, 5
ORDERS = ("question", "random")  # the order a training solution applies the question's operations in
CARRY_FREE = ("question_order", "every_order")  # with carry_rate 0: which orders never cross the tens digit


def apply(value: int, op: str, operand: int) -> int:
    return value + operand if op == "+" else value - operand


def carries(value: int, ops) -> bool:
    """Whether applying `ops` in this order from `value` crosses the tens digit (or goes below zero) at some step."""
    for op, b in ops:
        new = apply(value, op, b)
        if new < 0 or new // 10 != value // 10:
            return True
        value = new
    return False


def _next_operation(rng: random.Random, value: int, carry_rate: float) -> tuple[str, int]:
    """An operation (op, operand) on `value`; it carries or borrows across the tens digit with
    probability `carry_rate` (when both kinds are possible): carries are what tiny models learn last."""
    options = [(op, b) for op in "+-" for b in range(1, 10) if op == "+" or value - b >= 0]
    carry = [o for o in options if carries(value, [o])]
    local = [o for o in options if not carries(value, [o])]
    pool = carry if (rng.random() < carry_rate and carry) or not local else local
    return rng.choice(pool)


def _question(rng: random.Random, level: int, carry_rate: float, carry_free: str) -> tuple[int, list]:
    """(start value, operations) of a new question."""
    start = rng.randint(10, 99)
    if carry_free == "question_order":
        ops, value = [], start
        for _ in range(level):
            ops.append(_next_operation(rng, value, carry_rate))
            value = apply(value, *ops[-1])
        return start, ops
    # every_order: no subset of the operations may leave the decade, i.e. units + all additions <= 9 and
    # units - all subtractions >= 0; each operation is drawn among those that keep that possible.
    while True:
        units, up, down, ops = start % 10, 0, 0, []
        for _ in range(level):
            options = [("+", b) for b in range(1, 10) if units + up + b <= 9] + \
                      [("-", b) for b in range(1, 10) if units - down - b >= 0]
            if not options:
                break
            op, b = rng.choice(options)
            up, down = (up + b, down) if op == "+" else (up, down + b)
            ops.append((op, b))
        if len(ops) == level:
            return start, ops
        start = start - units + rng.randint(0, 9)  # no room left at these units: try other units


def solution_order(rng: random.Random, start: int, ops: list[tuple[str, int]], carry_rate: float) -> list[int]:
    """A random order of the operations (indices into `ops`): uniform over the orders that do not carry when the
    question's own order does not (carry_rate 0), over all orders otherwise."""
    orders = list(itertools.permutations(range(len(ops))))
    if carry_rate == 0:
        orders = [o for o in orders if not carries(start, [ops[i] for i in o])]
    return list(rng.choice(orders))


def _solution(start: int, ops: list[tuple[str, int]]) -> tuple[str, str]:
    value, steps = start, []
    for op, b in ops:
        new = apply(value, op, b)
        steps.append(f"{value} {op} {b} = {new}")
        value = new
    return format_solution(steps, str(value)), str(value)


def make_problem(rng: random.Random, level: int, carry_rate: float = 0.5, order: str = "question",
                 carry_free: str = "question_order", solutions: int = 1) -> dict:
    """One question with its answer and `solutions` step-format solutions (`solutions`; `solution` is the
    first): in the question's order, or each in a random order (distinct orders while there are enough)."""
    if not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ValueError(f"toy level must be in [{MIN_LEVEL}, {MAX_LEVEL}], got {level}")
    if order not in ORDERS:
        raise ValueError(f"toy order must be one of {', '.join(ORDERS)}, got {order!r}")
    if carry_free not in CARRY_FREE:
        raise ValueError(f"toy carry_free must be one of {', '.join(CARRY_FREE)}, got {carry_free!r}")
    if carry_free == "every_order" and carry_rate > 0:
        raise ValueError(f"toy carry_free every_order draws questions that carry in no order: carry_rate must be 0, "
                         f"got {carry_rate}")
    start, ops = _question(rng, level, carry_rate, carry_free)
    question = "Compute " + " ".join([str(start)] + [f"{op} {b}" for op, b in ops]) + "."
    texts, seen = [], set()
    for _ in range(solutions):
        if order == "question":
            idx = list(range(len(ops)))
        else:
            for _ in range(8):  # a new order (of the operations, not of their indices) while one is easy to find
                idx = solution_order(rng, start, ops, carry_rate)
                if tuple(ops[i] for i in idx) not in seen:
                    break
            seen.add(tuple(ops[i] for i in idx))
        texts.append(_solution(start, [ops[i] for i in idx])[0])
    answer = _solution(start, ops)[1]
    return {"question": question, "answer": answer, "level": level, "solution": texts[0], "solutions": texts}


def make_split(n: int, seed: int, levels: tuple[int, int] = (MIN_LEVEL, MAX_LEVEL), split: str = "train",
               carry_rate: float = 0.5, order: str = "question", carry_free: str = "question_order",
               solutions_per_question: int = 1) -> list[dict]:
    """`n` rows with levels spread uniformly over `levels`; ids are stable for a (split, seed). Each question
    gives `solutions_per_question` rows (its solutions in different orders), so n / k distinct questions."""
    if n < 1:
        raise ValueError(f"number of toy problems must be positive, got {n}")
    lo, hi = levels
    rng = random.Random(f"toy-{split}-{seed}")
    rows, i = [], 0
    while len(rows) < n:
        problem = make_problem(rng, lo + i % (hi - lo + 1), carry_rate, order, carry_free, solutions_per_question)
        solutions = problem.pop("solutions")
        for text in solutions[: n - len(rows)]:
            rows.append({"id": f"toy-{split}-{len(rows)}", **problem, "solution": text})
        i += 1
    rng.shuffle(rows)
    return rows


def make_splits(n_train: int, n_prm: int, n_test: int, seed: int, levels=(MIN_LEVEL, MAX_LEVEL),
                carry_rate: float = 0.5, order: str = "question", carry_free: str = "question_order",
                solutions_per_question: int = 1) -> dict[str, list[dict]]:
    """Test, prm and train splits with no question in two of them (the training splits may repeat a
    question, as a real data set does). The small splits are drawn first, so a large train split that
    exhausts the easy levels' few distinct questions cannot starve them. Only training solutions take random
    orders and several solutions a question; a test or prm row's solution is the question's order (its reference
    answer is all that is graded)."""
    out, held_out = {}, set()
    for split, n in (("test", n_test), ("prm", n_prm), ("train", n_train)):
        train = split == "train"
        shape = dict(carry_rate=carry_rate, carry_free=carry_free, order=order if train else "question",
                     solutions_per_question=solutions_per_question if train else 1)
        rows, size = [], n
        for _ in range(6):  # draw more until enough problems are new to this split
            rows = [r for r in make_split(size, seed, levels, split, **shape) if r["question"] not in held_out]
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

    Order-aware: step k (1-based) is right when it reads "Step k: a op b = c" with a the value so far, (op, b) one
    of the question's operations not yet applied (an operation the question holds twice may be applied twice) and
    c = a op b; the answer line is right when every operation has been applied and it states the final value. A
    step that cannot be parsed, an operation used more often than the question holds it, an early or missing
    answer line are wrong. The exact correctness the Math-Shepherd labels estimate."""
    value, remaining = parse_question(question)
    remaining = list(remaining)
    for i, raw in enumerate(steps):
        body = raw.replace(tag, "").strip()
        if remaining:
            m = _STEP_RE.match(body)
            if not m or int(m.group(1)) != i + 1 or int(m.group(2)) != value:
                return i
            operation = (m.group(3), int(m.group(4)))
            if operation not in remaining:
                return i
            remaining.remove(operation)
            value = apply(value, *operation)
            if int(m.group(5)) != value:
                return i
        else:
            m = _ANSWER_RE.match(body)
            return None if m and int(m.group(1)) == value else i
    return len(steps)  # ended before its answer line: the missing step is the first wrong one


def exact_step_labels(question: str, steps: list[str], tag: str = STEP_TAG) -> list[float]:
    """1.0 for the steps before the first wrong one, 0.0 from it on (a prefix stays wrong once it is):
    the labels a perfect Math-Shepherd completer would give."""
    first = first_wrong_step(question, steps, tag)
    return [1.0 if first is None or i < first else 0.0 for i in range(len(steps))]
