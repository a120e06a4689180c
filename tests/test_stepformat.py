"""The Math-Shepherd step format: what policies write, PRMs score and searches split into steps."""
from __future__ import annotations

import pytest

from infscale.core.grading import extract_answer, is_correct
from infscale.core.stepformat import (
    STEP_TAG,
    check_step_tag_agreement,
    close_last_step,
    format_prompt,
    format_solution,
    is_finished,
    split_steps,
)

T = STEP_TAG


def test_format_solution_layout_is_the_released_data_sets():
    # Math-Shepherd's layout: numbered steps from 1, one a line, each closed by the tag, then the answer line.
    assert format_solution(["2 + 3 = 5", "5 * 4 = 20"], "20") == (
        f"Step 1: 2 + 3 = 5 {T}\nStep 2: 5 * 4 = 20 {T}\nThe answer is: 20 {T}")
    assert format_solution([], "7", tag="<s>") == "The answer is: 7 <s>"


def test_format_solution_round_trips_through_split_and_grading():
    text = format_solution(["a", "b", "c"], "42")
    steps = split_steps(text)
    assert len(steps) == 4 and all(s.endswith(T) for s in steps)
    assert "".join(steps) == text
    assert is_finished(text) and extract_answer(text, "gsm8k") == "42"


def test_format_prompt_is_the_question_then_a_newline():
    assert format_prompt("  What is 2+2?  \n") == "What is 2+2?\n"


def test_split_steps_keeps_an_unfinished_last_step():
    # A generation cut by the token limit: its last piece has no tag but is a step of the path.
    text = f"Step 1: a {T}\nStep 2: b {T}\nStep 3: c {T}\nStep 4: d"
    assert split_steps(text) == [f"Step 1: a {T}", f"\nStep 2: b {T}", f"\nStep 3: c {T}", "\nStep 4: d"]


def test_split_steps_ignores_a_whitespace_tail():
    # Whitespace after the last tag (a newline before end-of-text) is not a step: a search would expand it.
    text = f"Step 1: a {T}\nStep 2: b {T}\nThe answer is: 3 {T}\n \n"
    steps = split_steps(text)
    assert len(steps) == 3 and steps[-1] == f"\nThe answer is: 3 {T}"
    assert split_steps("   ") == [] and split_steps("") == []


def test_close_last_step_tags_an_untagged_answer_line():
    assert close_last_step("Step 1: a ки\nThe answer is: 5\n") == "Step 1: a ки\nThe answer is: 5 ки"
    assert close_last_step("The answer is: 5") == "The answer is: 5 ки"
    assert close_last_step("x <t> y", tag="<t>") == "x <t> y <t>"


def test_close_last_step_leaves_a_closed_path_alone():
    # Several tags, the last one closing the text: adding another would give the PRM an empty extra step.
    closed = f"Step 1: a {T}\nStep 2: b {T}\nThe answer is: 5 {T}"
    assert close_last_step(closed) == closed
    assert close_last_step(closed + "\n  ") == closed + "\n  "


def test_is_finished_accepts_every_answer_form_the_grader_accepts():
    # REBASE and MCTS keep a path as a candidate once it is finished; the grader reads these forms too.
    for text in ("Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки", "Step 1: 3 + 4 = 7 ки\nThe answer is 7 ки"):
        assert is_finished(text)
        assert is_correct(extract_answer(text, "gsm8k"), "7", "gsm8k")
    assert not is_finished("Step 1: 3 + 4 = 7 ки\nStep 2: the answer")
    assert not is_finished("")


def test_step_tag_agreement():
    check_step_tag_agreement(T, T)  # the same tag: no error
    with pytest.raises(ValueError, match=r"^step tag mismatch: the policy separates steps with '\\n\\n'"):
        check_step_tag_agreement("\n\n", T)
    with pytest.raises(ValueError, match=r"^config\.yaml: step tag mismatch.*'ки'"):
        check_step_tag_agreement("<step>", T, where="config.yaml: ")
