"""Code steps are logical lines (core/codesteps.py), and the toy code task (core/codetask.py) is sound: every
reference program passes its own asserts, held-out combinations stay out of training, splits do not overlap."""
import ast
import io
import tokenize

import pytest

from infscale.core import codesteps, codetask


def logical_line_ends(code: str) -> list[int]:
    """Independent check: offsets after each NEWLINE token of a complete program (the tokenizer's own)."""
    lines = code.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NEWLINE and tok.string:
            out.append(starts[tok.end[0] - 1] + tok.end[1])
    return out


PROGRAM = ("def f(xs):\n"
           "    ys = [x for x in xs\n"
           "          if x > 2]  # a comment\n"
           "    s = '''two\n"
           "lines'''\n"
           "    t = 1 + \\\n"
           "        2\n"
           "    return (len(ys),\n"
           "            s)\n")


def test_steps_end_where_python_ends_a_logical_line():
    assert codesteps.step_ends(PROGRAM) == logical_line_ends(PROGRAM)
    steps = codesteps.split_steps(PROGRAM)
    assert [s.split()[0] for s in steps] == ["def", "ys", "s", "t", "return"]
    assert "".join(steps) == PROGRAM


def test_unfinished_code_never_raises_and_its_trailing_piece_is_a_step():
    text = "def f(xs):\n    return max(xs,\n"
    assert codesteps.step_ends(text) == [len("def f(xs):\n"), len(text.rstrip())]
    assert codesteps.is_open("x = (1,\n") and codesteps.is_open("s = '''a\n") and codesteps.is_open("t = 1 + \\\n")
    # a bad dedent or an unterminated one-line string ends its line: execution will grade it
    assert not codesteps.is_open("def f():\n        a = 1\n    b = 2\n")
    assert not codesteps.is_open("x = 'abc\n")
    assert codesteps.split_steps("") == [] and codesteps.split_steps("x = 1\n  ") == ["x = 1\n"]
    assert codesteps.split_steps("a = 1\n\nb = 2") == ["a = 1\n", "\n", "b = 2"]  # a blank line is a newline too


def test_a_fenced_answer_is_code_only_inside_its_fence():
    text = "Here's the code:\n```python\ndef f(a,\n      b):\n    return a\n```\nIt's done.\n"
    steps = codesteps.split_steps(text)
    assert steps == ["Here's the code:\n", "```python\n", "def f(a,\n      b):\n", "    return a\n", "```\n",
                     "It's done.\n"]
    assert codesteps.extract_program(text) == "def f(a,\n      b):\n    return a\n"
    assert codesteps.extract_program("```python\ndef g():\n    return 1") == "def g():\n    return 1"
    assert codesteps.extract_program("def h(): ки\n    pass") == "def h(): \n    pass"
    assert codesteps.extract_program("  \n") is None and codesteps.extract_program(None) is None


def test_toy_reference_programs_compute_what_the_asserts_say():
    splits = codetask.make_splits(300, 20, 40, seed=3, held_out=8)
    for row in splits["test"] + splits["train"][:80]:
        for source in (row["answer"], row["solution"]):
            env: dict = {}
            exec(compile(source, "<toy>", "exec"), env)  # our own generated programs, not a model's
            for test in row["tests"]:
                exec(test, env)
        assert len(row["tests"]) == 3 and all(t in row["question"] for t in row["tests"])
        assert 4 <= len(codesteps.split_steps(row["solution"])) <= 6
        ast.parse(row["solution"])


def test_held_out_combinations_never_train_and_splits_are_disjoint():
    splits = codetask.make_splits(2000, 30, 200, seed=1, held_out=8)
    held = {"/".join(c) for c in codetask.held_out_combos(1, 8)}
    assert len(held) == 8
    assert not held & {r["combo"] for r in splits["train"]}
    assert held & {r["combo"] for r in splits["test"]}  # the test split draws them
    test_q = {r["question"] for r in splits["test"]}
    assert not test_q & {r["question"] for r in splits["train"]} and not test_q & {r["question"] for r in splits["prm"]}
    assert {r["solution"].count("\n") + 1 for r in splits["train"]} == {4, 6}  # both shapes
    assert codetask.make_splits(50, 5, 10, seed=1) == codetask.make_splits(50, 5, 10, seed=1)
    with pytest.raises(ValueError, match="held_out"):
        codetask.held_out_combos(0, 48)


def test_code_tokenizer_keeps_the_newline_a_token_of_its_own(tmp_path):
    """A code step ends at a newline: the next step's prompt must tokenise as training did, so no token may join
    a newline to the indentation after it."""
    from infscale.core.data import training_texts
    from infscale.training.tokenizer import train_tokenizer

    rows = codetask.make_splits(400, 2, 2, seed=0)["train"]
    tok = train_tokenizer(training_texts(rows), tmp_path / "tok", vocab_size=300, newline_token=True)
    pieces = [tok.decode([i]) for i in tok.encode(rows[0]["question"] + "\n" + rows[0]["solution"])]
    assert all(p == "\n" or "\n" not in p for p in pieces) and "\n" in pieces
    plain = train_tokenizer(training_texts(rows), tmp_path / "plain", vocab_size=300)
    assert any("\n" in p and p != "\n" for p in (plain.decode([i]) for i in plain.encode(rows[0]["solution"])))


def test_a_prm_reads_a_code_candidate_as_its_logical_lines():
    from infscale.search.verifiers import code_steps

    assert code_steps("def f(xs):\n    return (1,\n            2)\n\n    # done") == [
        "def f(xs):", "    return (1,\n            2)", "    # done"]
