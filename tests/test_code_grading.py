"""Code as a study (docs/code-study.md): candidates graded by running them in the sandbox, votes grouped by
behaviour on the prompt's own call expressions, pass@k and the selected candidate's pass rate, and tree search
whose steps are logical lines."""
import math

import pytest

from infscale.core import codesteps
from infscale.core.grading import candidate_answer, is_correct
from infscale.core.stepformat import format_prompt
from infscale.evaluation.code_grading import code_question, code_rows, grade_records, probe_calls
from infscale.evaluation.evaluation import metrics_rows, problem_correct
from infscale.evaluation.flops import ModelShape
from infscale.search.engine_base import Completion, Generation
from infscale.search.rebase import run_rebase

TESTS = ["assert f([1, 2, 3]) == 6", "assert f([4]) == 4", "assert f([]) == 0"]
QUESTION = "Return the sum of xs.\n" + "\n".join(TESTS)
RIGHT_LOOP = "def f(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t"
RIGHT_BUILTIN = "def f(xs):\n    return sum(xs)"
WRONG = "def f(xs):\n    return max(xs, default=0)"  # right on two of three asserts
BROKEN = "def f(xs):\n    return xs[7]"  # raises on every probe: no behaviour


def record(texts, question=QUESTION, rid="p"):
    return {"id": rid, "question": question, "reference": "", "prompt_tokens": 10,
            "candidates": [{"text": t, "tokens": 10, "finish_reason": "stop",
                            "answer": candidate_answer(t, "stop", "toy_code")} for t in texts]}


def row(tests=TESTS, rid="p", **extra):
    return {"id": rid, "question": QUESTION, "answer": RIGHT_BUILTIN, "tests": list(tests), **extra}


def test_probes_are_the_call_expressions_the_prompt_shows():
    question = ("Find it.\nassert f([1, 2]) == 3\nassert set(g((1, 2), k=3)) == {1}\n"
                "assert math.isclose(h(2.0), 4.0, rel_tol=0.001)\nassert f([1, 2]) == 3\nprint('not an assert')")
    assert probe_calls(question) == ["f([1, 2])", "g((1, 2), k=3)", "h(2.0)"]


def test_grading_runs_each_distinct_program_once_and_groups_by_behaviour():
    rec = record([RIGHT_LOOP, WRONG, RIGHT_BUILTIN, BROKEN, "no code at all (", RIGHT_LOOP, "   "])
    counts = grade_records([rec], {"p": row()}, threads=2)
    c = rec["candidates"]
    assert [x["passed"] for x in c] == [True, False, True, False, False, True, False]
    assert counts == {"candidates": 7, "programs_run": 5, "passed": 3}
    assert c[0]["answer"] == c[2]["answer"] == c[5]["answer"]  # written differently, the same outputs
    assert c[1]["answer"] not in (None, c[0]["answer"])
    assert c[3]["answer"] is None and c[6]["answer"] is None and c[6]["status"] == "no_program"
    assert c[4]["answer"] is None  # a syntax error gives no output


def test_behaviour_never_holds_an_expected_value():
    """The vote's unit reads only the inputs: the same program on asserts that expect other values has the same
    behaviour (and now fails)."""
    other = [t.replace("== 6", "== 7") for t in TESTS]
    a, b = record([RIGHT_BUILTIN], rid="a"), record([RIGHT_BUILTIN], question=QUESTION.replace("== 6", "== 7"),
                                                     rid="b")
    grade_records([a, b], {"a": row(rid="a"), "b": row(tests=other, rid="b")}, threads=1)
    assert a["candidates"][0]["answer"] == b["candidates"][0]["answer"]
    assert a["candidates"][0]["passed"] and not b["candidates"][0]["passed"]


def test_majority_picks_the_largest_behaviour_group_and_pass_at_k_counts_passes():
    # two wrong programs that behave alike outvote one right one; with weights the right one wins
    wrong_alike = "def f(xs):\n    m = 0\n    for x in xs:\n        m = max(m, x)\n    return m"
    rec = record([RIGHT_BUILTIN, WRONG, wrong_alike, BROKEN])
    grade_records([rec], {"p": row()}, threads=2)
    assert not problem_correct(rec, 4, "majority", "toy_code", "last")
    assert problem_correct(rec, 1, "majority", "toy_code", "last")
    for c, w in zip(rec["candidates"], (0.9, 0.3, 0.3, 0.99)):
        c["step_scores"] = [w]
    assert problem_correct(rec, 4, "weighted_majority", "toy_code", "last")  # 0.9 > 0.6
    assert problem_correct(rec, 4, "best_of_n", "toy_code", "last")  # BROKEN has no answer: never picked
    shape = ModelShape(non_embedding_params=1000, n_layer=2, d_attn=8)
    rows = metrics_rows([rec], dataset="code", model="m", strategy="sampling", seed=0, budgets=[2, 4],
                        aggregations=["majority"], reduction="last", grader="toy_code", policy=shape, prm=shape)
    by_n = {r["n"]: r for r in rows}
    # pass@k, 1 of 4 candidates passes: 1 - C(3, k) / C(4, k)
    assert by_n[2]["coverage"] == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))
    assert by_n[4]["coverage"] == 1.0 and by_n[4]["accuracy"] == 0.0
    assert by_n[4]["invalid_share"] == 0.25


def test_code_answers_are_never_compared_as_strings():
    with pytest.raises(ValueError, match="running it"):
        is_correct(RIGHT_BUILTIN, RIGHT_BUILTIN, "toy_code")
    with pytest.raises(ValueError, match="never run"):
        problem_correct(record([RIGHT_BUILTIN]), 1, "majority", "toy_code", "last")


def test_mbpp_rows_show_their_asserts_and_setup_runs_before_them():
    mbpp = {"id": "mbpp/2", "question": "Write a function to add.", "tests": ["assert add(1, 2) == 3"],
            "setup": "import math", "code": "def add(a, b):\n    return a + b"}
    [r] = code_rows([mbpp])
    assert r["question"] == "Write a function to add.\nYour code should pass these tests:\nassert add(1, 2) == 3"
    assert r["answer"] == mbpp["code"] and code_question(r) == r["question"]
    rec = record(["```python\ndef add(a, b):\n    return a + b + math.floor(0.5)\n```"], question=r["question"],
                 rid="mbpp/2")
    grade_records([rec], {"mbpp/2": r}, threads=1)
    assert rec["candidates"][0]["passed"] and rec["candidates"][0]["answer"] == '["=3"]'
    with pytest.raises(ValueError, match="tests"):
        code_rows([{"id": "x", "question": "q"}])


# ----------------------------------------------------------------------------- tree search with code steps

LINES = ["def f(xs):\n", "    ys = [x for x in xs\n", "          if x > 1]\n", "    return sum(ys)"]


class LineEngine:
    """Writes LINES one physical line per call (stop at a newline), the last ended by end-of-text."""

    def __init__(self, prompt):
        self.prompt, self.calls = prompt, []

    def generate(self, prompts, params):
        self.calls.append((len(prompts), params.stop, params.max_new_tokens))
        out = []
        for p in prompts:
            written = p[len(self.prompt):]
            line = LINES[next(i for i in range(len(LINES)) if "".join(LINES[:i]) == written)]
            out.append(Generation(prompt_tokens=len(p.split()),
                                  completions=[Completion(line, len(line.split()), "stop")]))
        return out


class StepCountPRM:
    def score(self, questions, solutions):
        return [[0.5] * len(codesteps.step_ends(s)) for s in solutions], [len(s) for s in solutions]


def test_rebase_steps_are_logical_lines_and_a_path_ends_at_end_of_text():
    r = row()
    engine = LineEngine(format_prompt(r["question"]))
    [rec] = run_rebase(engine, StepCountPRM(), [r], "toy_code", 2, {"max_step_tokens": 16, "max_depth": 8}, seed=0)
    program = "".join(LINES)
    assert [c["text"] for c in rec["candidates"]] == [program, program]
    assert rec["candidates"][0]["answer"] == program  # its program, until grading runs it
    depth2 = [n for n in rec["tree"] if n["depth"] == 2]
    assert {n["text"] for n in depth2} == {LINES[1] + LINES[2]}  # the open bracket carried the step on
    assert all(n["finished"] == (n["depth"] == 3) for n in rec["tree"])
    assert {stop for _, stop, _ in engine.calls} == {("\n",)}
    # the continued step is one node, its tokens both parts'
    assert sorted(gen for _, gen in rec["cost"]["decode"]) == sorted(
        [len(LINES[0].split())] * 2 + [len((LINES[1] + LINES[2]).split())] * 2 + [len(LINES[3].split())] * 2)
    assert any(m < 16 for _, _, m in engine.calls)  # the continuation asked only for the tokens left


def test_table3_lays_sampling_and_rebase_side_by_side():
    import pandas as pd

    from infscale.reporting.report import seed_summary
    from infscale.reporting.tables import TABLE3_COLUMNS, table3

    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for strategy, n, acc, flops, cover in (("sampling", 8, 0.6, 8e12, 0.8), ("sampling", 16, 0.7, 16e12, 0.9),
                                               ("rebase", 8, 0.7, 8.3e12, 0.75), ("rebase", 32, 0.8, 35e12, 0.9)):
            for aggregation, delta in (("weighted_majority", 0.0), ("majority", -0.2)):
                a = acc + shift + delta
                rows.append(dict(dataset="mbpp", model="llama", strategy=strategy, n=n, seed=seed,
                                 aggregation=aggregation, subset="all", n_problems=10, accuracy=a, error=1 - a,
                                 params=8, policy_flops=flops, coverage=cover))
    t = table3(seed_summary(pd.DataFrame(rows)), aggregation="weighted_majority")
    assert list(t.columns) == TABLE3_COLUMNS and list(t["samples"]) == [8, 16, 32]
    first = t.iloc[0]
    assert (first["sampling_flops"], first["rebase_flops"]) == (8e12, 8.3e12)
    assert first["sampling_pass_rate"] == pytest.approx(65.0) and first["rebase_pass_rate"] == pytest.approx(75.0)
    assert first["sampling_pass_at_n"] == pytest.approx(80.0)
    assert math.isnan(t.iloc[1]["rebase_pass_rate"]) and math.isnan(t.iloc[2]["sampling_flops"])
    assert list(table3(seed_summary(pd.DataFrame(rows)), ns=[16])["samples"]) == [16]


class EmptyEngine(LineEngine):
    """Ends every path at once with end-of-text."""

    def generate(self, prompts, params):
        return [Generation(prompt_tokens=3, completions=[Completion("", 1, "stop")]) for _ in prompts]


def test_a_path_ended_before_any_code_is_dropped_not_scored():
    r = row()
    [rec] = run_rebase(EmptyEngine(format_prompt(r["question"])), StepCountPRM(), [r], "toy_code", 2,
                       {"max_step_tokens": 16}, seed=0)
    assert rec["candidates"] == [] and {n["drop_reason"] for n in rec["tree"]} == {"empty"}
