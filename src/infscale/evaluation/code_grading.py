"""Grading code candidates by running them, and grouping them by what they do (docs/code-study.md).

A code problem's row holds its asserts (`tests`, and `setup` code they need); its prompt shows them
(`code_rows`, Austin et al.'s layout for MBPP; the toy task's questions hold them already). Each candidate's
program (`extract_program`: the code in its markdown fence, or the whole text) runs once in the sandbox
(`infscale.evaluation.execution.run_programs`, one process per distinct program, a pool sized from the job's
threads), and the same run gives two things that are kept apart:

* `passed` (and `status`): all asserts held. Only the metrics read it: the pass rate of the candidate an
  aggregation selects, and pass@k over all candidates.
* `answer`, the candidate's behaviour: the value (repr) or the exception type of each call expression of the
  asserts the prompt shows (`probe_calls`), evaluated before the asserts run. It is the unit a vote counts,
  as a stated number is for math: candidates with the same outputs on the same inputs are one answer, however
  they are written. It never holds an expected value or a pass: it reads only inputs the prompt shows the policy.
  A candidate with no program, or whose every probe raised or was lost, has no answer (None: it never votes
  and is never selected, as a math candidate without a stated answer).

Verifiers read only the question and the candidate's text (search/verifiers.py): no verifier sees a test result.
"""
from __future__ import annotations

import ast
import builtins
import json
import re
import secrets

from infscale.core.codesteps import extract_program

TIMEOUT_S = 4.0
_ASSERT = re.compile(r"^\s*assert\b.*$", re.MULTILINE)
PROMPT_TESTS = "Your code should pass these tests:"


def code_question(row: dict) -> str:
    """The prompt text of a code problem: its question, and its asserts when the question does not show them
    (Austin et al. 2021's layout: the task, then "Your code should pass these tests:" and the asserts)."""
    question = row["question"].strip()
    tests = row.get("tests") or []
    if not tests or all(t.strip() in question for t in tests):
        return question
    return f"{question}\n{PROMPT_TESTS}\n" + "\n".join(t.strip() for t in tests)


def code_rows(rows: list[dict], where: str = "") -> list[dict]:
    """Rows of a code data set as the pipeline reads them: question with its asserts shown, answer = the
    reference program (`answer`, or MBPP's `code`)."""
    out = []
    for i, row in enumerate(rows, start=1):
        if not row.get("tests"):
            raise ValueError(f"{where}row {i} ({row.get('id')}): a code problem needs its asserts (field 'tests')")
        out.append({**row, "question": code_question(row), "answer": row.get("answer", row.get("code", ""))})
    return out


def _outer_calls(node: ast.AST, names: frozenset) -> list[ast.Call]:
    """Calls of a name that is not a builtin (the function under test), outermost first, not inside another."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id not in names:
        return [node]
    return [c for child in ast.iter_child_nodes(node) for c in _outer_calls(child, names)]


_BUILTINS = frozenset(dir(builtins))


def probe_calls(question: str) -> list[str]:
    """The call expressions of the function under test in the assert lines of a prompt (in order, no repeats):
    `assert f([1, 2]) == 3` gives `f([1, 2])`; `assert set(f(x)) == {1}` gives `f(x)`; `math.isclose(f(1), 2.0)`
    gives `f(1)`. Lines that do not parse are skipped."""
    out: list[str] = []
    for line in _ASSERT.findall(question):
        try:
            tree = ast.parse(line.strip())
        except SyntaxError:
            continue
        for call in _outer_calls(tree, _BUILTINS):
            expr = ast.unparse(call)
            if expr not in out:
                out.append(expr)
    return out


def probe_statements(probes: list[str], marker: str) -> list[str]:
    """Statements that print each probe's repr (or its exception type) on a line starting with `marker`; they
    never raise, so the asserts after them still run."""
    out = []
    for i, expr in enumerate(probes):
        out.append(f"try:\n    __probe = '=' + repr({expr})\nexcept BaseException as __e:\n"
                   f"    __probe = '!' + type(__e).__name__\nprint({marker!r}, {i}, __probe[:200], flush=True)")
    return out


def read_behaviour(output: str, probes: list[str], marker: str) -> str | None:
    """The behaviour key of one run: JSON of each probe's printed value ('?' when its line was lost); None when
    no probe returned a value (every one raised, or none printed)."""
    seen: dict[int, str] = {}
    for line in output.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == marker and parts[1].isdigit():
            seen.setdefault(int(parts[1]), parts[2])
    values = [seen.get(i, "?") for i in range(len(probes))]
    if not any(v.startswith("=") for v in values):
        return None
    return json.dumps(values)


def syntactic_key(program: str) -> str | None:
    """Without probes, the vote's unit: the program's syntax tree (formatting and comments do not count); None
    when it does not parse."""
    try:
        return ast.dump(ast.parse(program))
    except (SyntaxError, ValueError):
        return None


def grade_records(records: list[dict], rows: dict[str, dict], threads: int | None = None,
                  timeout_s: float = TIMEOUT_S, run=None) -> dict:
    """Run every candidate of code `records` (the rows by id give tests and setup): set each candidate's
    `program`, `passed`, `status` and `answer` (its behaviour key; module docstring). Distinct (program, tests)
    run once. Returns counts (candidates, programs run, passed). `run` replaces the sandbox's run_programs
    (tests)."""
    if run is None:
        from infscale.evaluation.execution import run_programs as run
    marker = "@@probe-" + secrets.token_hex(8)
    jobs: dict[tuple, int] = {}
    plan = []  # (candidate, job key or None, probes)
    for record in records:
        row = rows.get(str(record["id"]))
        if row is None:
            raise ValueError(f"problem {record['id']!r}: no row with this id in the data (its tests are there)")
        probes = probe_calls(record["question"])
        setup = row.get("setup") or ""
        for c in record["candidates"]:
            program = extract_program(c["text"])
            c["program"] = program
            if program is None:
                plan.append((c, None, probes))
                continue
            full = program + ("\n\n" + setup if setup else "")
            key = (full, tuple(probe_statements(probes, marker)), tuple(row["tests"]))
            jobs.setdefault(key, len(jobs))
            plan.append((c, key, probes))
    keys = sorted(jobs, key=jobs.get)
    results = run([(k[0], [*k[1], *k[2]]) for k in keys], timeout_s, threads=threads) if keys else []
    by_key = dict(zip(keys, results))
    passed = 0
    for c, key, probes in plan:
        if key is None:
            c.update(passed=False, status="no_program", answer=None)
            continue
        result = by_key[key]
        answer = read_behaviour(result.output, probes, marker) if probes else syntactic_key(c["program"])
        c.update(passed=bool(result.passed), status=result.status, answer=answer)
        passed += bool(result.passed)
    return {"candidates": len(plan), "programs_run": len(keys), "passed": passed}
