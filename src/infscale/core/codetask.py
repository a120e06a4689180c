"""The embedded toy code task: list functions written from a one-line description and graded by running them.

A problem is a filter, a map and a reduce over a list of digits, described in words and shown with the three
asserts that grade it (as MBPP's prompts show theirs):

    Return the sum of each even x squared.
    assert f([3, 4, 1, 2]) == 20
    assert f([6]) == 36
    assert f([2, 5, 7]) == 4

filters: even, odd, above k; maps: the number itself, squared, plus k, times k; reduces: sum, max, min, count.
A solution is a 4- or 6-line program, one of two shapes picked at random per training row (several solution
paths, as the arithmetic toy's random orders give):

    def f(xs):                               def f(xs):
        ys = [x for x in xs if x % 2 == 0]       ys = []
        ys = [x * x for x in ys]                 for x in xs:
        return sum(ys)                               if x % 2 == 0:
                                                         ys.append(x * x)
                                                 return sum(ys)

Some (filter, map, reduce) combinations never appear in training (`held_out`, drawn from the seed): the test
split draws every combination, so a policy must compose what it has seen, and accuracy stays below 1.
Inputs are 1-5 digits; max and min get inputs whose filtered list is never empty (the asserts would raise).
Rows: id, question (description and asserts), answer (the reference program), solution (the training program),
tests (the asserts), combo.
"""
from __future__ import annotations

import itertools
import random

FILTERS = ("even", "odd", "above")
MAPS = ("same", "squared", "plus", "times")
REDUCES = ("sum", "max", "min", "count")
SHAPES = ("comprehension", "loop")
COMBOS = tuple(itertools.product(FILTERS, MAPS, REDUCES))


def _filter(kind: str, k: int) -> tuple[str, str]:
    """(words, condition on x)."""
    return {"even": ("even x", "x % 2 == 0"), "odd": ("odd x", "x % 2 == 1"),
            "above": (f"x above {k}", f"x > {k}")}[kind]


def _map(kind: str, k: int) -> tuple[str, str]:
    """(words after the filter, expression of x)."""
    return {"same": ("", "x"), "squared": (" squared", "x * x"), "plus": (f" plus {k}", f"x + {k}"),
            "times": (f" times {k}", f"x * {k}")}[kind]


def _reduce(kind: str) -> str:
    return {"sum": "sum(ys)", "max": "max(ys)", "min": "min(ys)", "count": "len(ys)"}[kind]


def program(combo: tuple[str, str, str], fk: int, mk: int, shape: str) -> str:
    """The solution program of a combination and its constants, in one of the two shapes (no trailing newline:
    end-of-text ends it)."""
    f, m, r = combo
    cond, expr = _filter(f, fk)[1], _map(m, mk)[1]
    if shape == "comprehension":
        lines = ["def f(xs):", f"    ys = [x for x in xs if {cond}]", f"    ys = [{expr} for x in ys]",
                 f"    return {_reduce(r)}"]
    elif shape == "loop":
        lines = ["def f(xs):", "    ys = []", "    for x in xs:", f"        if {cond}:",
                 f"            ys.append({expr})", f"    return {_reduce(r)}"]
    else:
        raise ValueError(f"toy code shape must be one of {', '.join(SHAPES)}, got {shape!r}")
    return "\n".join(lines)


def evaluate(combo: tuple[str, str, str], fk: int, mk: int, xs: list[int]):
    """The function's value on `xs`, computed here without executing any program (the tests' expected values)."""
    f, m, r = combo
    keep = {"even": lambda x: x % 2 == 0, "odd": lambda x: x % 2 == 1, "above": lambda x: x > fk}[f]
    fmap = {"same": lambda x: x, "squared": lambda x: x * x, "plus": lambda x: x + mk, "times": lambda x: x * mk}[m]
    ys = [fmap(x) for x in xs if keep(x)]
    return {"sum": sum, "max": max, "min": min, "count": len}[r](ys)


def _inputs(rng: random.Random, combo, fk: int, count: int = 3) -> list[list[int]]:
    """`count` distinct lists of 1-5 digits; for max and min each keeps at least one element after the filter."""
    f, _, r = combo
    keep = {"even": lambda x: x % 2 == 0, "odd": lambda x: x % 2 == 1, "above": lambda x: x > fk}[f]
    out: list[list[int]] = []
    while len(out) < count:
        xs = [rng.randint(0, 9) for _ in range(rng.randint(1, 5))]
        if r in ("max", "min") and not any(keep(x) for x in xs):
            continue
        if xs not in out:
            out.append(xs)
    return out


def make_problem(rng: random.Random, combo: tuple[str, str, str], shape: str | None = None) -> dict:
    """One problem of a combination: constants and inputs drawn, the description, asserts and a solution in
    `shape` (random when None)."""
    f, m, r = combo
    fk, mk = rng.randint(1, 6), rng.randint(2, 5)
    words = f"Return the {r} of each {_filter(f, fk)[0]}{_map(m, mk)[0]}."
    tests = [f"assert f({xs}) == {evaluate(combo, fk, mk, xs)!r}" for xs in _inputs(rng, combo, fk)]
    shape = shape or rng.choice(SHAPES)
    return {"question": "\n".join([words, *tests]), "answer": program(combo, fk, mk, "comprehension"),
            "solution": program(combo, fk, mk, shape), "tests": tests, "combo": "/".join(combo)}


def held_out_combos(seed: int, count: int) -> set[tuple[str, str, str]]:
    """The combinations training never shows (the same for a seed)."""
    if not 0 <= count < len(COMBOS):
        raise ValueError(f"toy_code held_out must be in [0, {len(COMBOS) - 1}], got {count}")
    return set(random.Random(f"toy-code-held-out-{seed}").sample(COMBOS, count))


def make_splits(n_train: int, n_prm: int, n_test: int, seed: int, held_out: int = 8) -> dict[str, list[dict]]:
    """Test, prm and train splits with no question in two of them; test and prm draw every combination, train
    none of the held-out ones. Test and prm rows' solutions take the comprehension shape (only the tests grade)."""
    held = held_out_combos(seed, held_out)
    seen = [c for c in COMBOS if c not in held]
    out, taken = {}, set()
    for split, n in (("test", n_test), ("prm", n_prm), ("train", n_train)):
        if n < 1:
            raise ValueError(f"number of toy_code {split} problems must be positive, got {n}")
        rng = random.Random(f"toy-code-{split}-{seed}")
        pool = seen if split == "train" else list(COMBOS)
        rows, tries = [], 0
        while len(rows) < n:
            tries += 1
            if tries > 50 * n:
                raise ValueError(f"could not draw {n} distinct toy_code {split} problems")
            problem = make_problem(rng, rng.choice(pool), None if split == "train" else "comprehension")
            if problem["question"] in taken:
                continue
            if split != "train":
                taken.add(problem["question"])
            rows.append({"id": f"code-{split}-{len(rows)}", **problem})
        out[split] = rows
    return out
