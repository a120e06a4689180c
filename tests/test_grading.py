"""Tests for infscale.core.grading, on the real GSM8K and MATH500 reference files."""

from __future__ import annotations

import json
import random
import re
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infscale.core.grading import (
    GRADERS,
    answers_equivalent,
    candidate_answer,
    extract_answer,
    grader_kind,
    is_correct,
    normalize_answer,
    reference_answer,
)


def _data_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[2] / "shared" / "data", here.parents[1] / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    pytest.skip("reference data folder shared/data not found next to the project")


def _rows(name: str) -> list[dict]:
    path = _data_dir() / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ----------------------------------------------------------------------------- real data


@pytest.mark.parametrize("split", ["gsm8k_test.jsonl", "gsm8k_train.jsonl"])
def test_gsm8k_reference_solutions_grade_correct(split):
    rows = _rows(split)
    assert len(rows) > 1000
    failures = [
        (i, extract_answer(r["answer"], "gsm8k"), reference_answer(r, "gsm8k"))
        for i, r in enumerate(rows)
        if not is_correct(extract_answer(r["answer"], "gsm8k"), reference_answer(r, "gsm8k"), "gsm8k")
    ]
    assert failures == []


def test_math500_reference_solutions_grade_correct():
    rows = _rows("math500_test.jsonl")
    assert len(rows) == 500
    start = time.perf_counter()
    failures = [
        (r["unique_id"], extract_answer(r["solution"], "math500"), r["answer"])
        for r in rows
        if not is_correct(extract_answer(r["solution"], "math500"), r["answer"], "math500")
    ]
    elapsed = time.perf_counter() - start
    assert failures == []
    assert elapsed < 60, f"grading 500 MATH500 solutions took {elapsed:.1f}s"


def test_gsm8k_perturbed_answers_grade_wrong():
    rows = _rows("gsm8k_test.jsonl")
    for r in rows:
        ref = reference_answer(r, "gsm8k")
        wrong = str(int(normalize_answer(ref, "gsm8k")) + 1)
        assert not is_correct(wrong, ref, "gsm8k"), (ref, wrong)


def _change_first_digit(answer: str) -> str:
    m = re.search(r"\d", answer)
    assert m is not None
    return answer[: m.start()] + str((int(m.group()) + 1) % 10) + answer[m.end() :]


def test_math500_perturbed_answers_grade_wrong():
    rows = [r for r in _rows("math500_test.jsonl") if re.search(r"\d", r["answer"])]
    sample = random.Random(0).sample(rows, 100)
    wrongly_accepted = [
        (r["answer"], _change_first_digit(r["answer"]))
        for r in sample
        if is_correct(_change_first_digit(r["answer"]), r["answer"], "math500")
    ]
    assert wrongly_accepted == []


# ----------------------------------------------------------------------------- extraction


def test_step_format_extraction():
    text = "Step 1: 2 + 3 = 5 ки\nThe answer is: 5 ки"
    assert extract_answer(text, "gsm8k") == "5"
    assert extract_answer(text, "math500") == "5"
    assert extract_answer("Step 1: x ки\nThe answer is: $\\frac{1}{2}$. ки", "math500") == "\\frac{1}{2}"
    # the last "The answer is" wins
    assert extract_answer("The answer is 3\nno wait\nThe answer is 4", "gsm8k") == "4"


def test_unparseable_text_gives_none():
    assert extract_answer("no answer here", "math500") is None
    assert extract_answer("no answer here", "gsm8k") is None
    assert is_correct(None, "5", "math500") is False
    assert is_correct(None, "5", "gsm8k") is False
    assert answers_equivalent(None, None, "gsm8k") is False
    assert answers_equivalent("5", None, "gsm8k") is False


def test_gsm8k_marker_and_last_number():
    assert extract_answer("so 3 + 4 = 7\n#### 7", "gsm8k") == "7"
    # the last-number fallback only when asked for, and then the LAST number
    assert extract_answer("She pays $1,250.50 in total.", "gsm8k") is None
    assert extract_answer("She pays $1,250.50 in total.", "gsm8k", last_number_fallback=True) == "1,250.50"
    assert extract_answer("It drops to -12 degrees", "gsm8k", True) == "-12"
    assert extract_answer("3 apples plus 4 make 7", "gsm8k", True) == "7"
    # a final "####" line beats an earlier "The answer is" (GSM8K reference style)
    assert extract_answer("The answer is therefore 3.\n#### 3", "gsm8k") == "3"
    # calculator annotations are ignored
    assert extract_answer("The answer is <<8=8>>8.", "gsm8k") == "8"
    # no last-number fallback on LaTeX datasets
    assert extract_answer("we get 12 apples", "math500", last_number_fallback=True) is None


def test_boxed_extraction_nested_braces():
    text = r"so $x = \boxed{\frac{\sqrt{3}}{2}}$ and earlier \boxed{1}"
    assert extract_answer(text, "math500") == "1"
    text = r"first \boxed{1}, finally $\boxed{\frac{\sqrt{3}}{2}}$."
    assert extract_answer(text, "math500") == r"\frac{\sqrt{3}}{2}"
    assert extract_answer(r"\fbox{\{1, 2\}}", "math500") == r"\{1, 2\}"
    assert extract_answer(r"so it is $\boxed 5$", "math500") == "5"
    # a truncated box falls back to the last complete one
    assert extract_answer(r"\boxed{2} then \boxed{\frac{1}{", "math500") == "2"


# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.50", "5.5"),
        ("1,000", "1000"),
        ("-0", "0"),
        ("$18", "18"),
        ("18.00", "18"),
        ("3/4", "3/4"),
        (" 42. ", "42"),
        ("+.5", "0.5"),
        ("Seven", "seven"),
        ("007", "7"),
        ("0.250", "0.25"),
        ("+3/4", "3/4"),
        (r"\$1,000", "1000"),
        (r"\frac{3}{4}", "3/4"),
        ("12.5%", "12.5"),
    ],
)
def test_normalize_numeric(raw, expected):
    assert normalize_answer(raw, "gsm8k") == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})"),
        (r"\dfrac{1}{2}", r"\frac{1}{2}"),
        (r"\tfrac12", r"\frac12"),
        (r"90^\circ", "90"),
        (r"90^{\circ}", "90"),
        (r"\text{Evelyn}", "Evelyn"),
        (r"10\!000", "10000"),
        (r"2\pi r.", r"2\pi r"),
        (r"4210_{5}", "4210_5"),
    ],
)
def test_normalize_latex(raw, expected):
    assert normalize_answer(raw, "math500") == expected


def test_normalize_none():
    assert normalize_answer(None, "gsm8k") is None
    assert normalize_answer(None, "math500") is None


# ----------------------------------------------------------------------------- comparison


def test_numeric_comparison():
    assert is_correct("18.0", "18", "gsm8k")
    assert is_correct("0.75", "3/4", "gsm8k")
    assert is_correct("1,000", "1000", "toy")
    assert is_correct("1000000.0000001", "1000000", "gsm8k")
    assert not is_correct("19", "18", "gsm8k")
    assert not is_correct("eighteen", "18", "gsm8k")


def test_latex_symbolic_comparison():
    assert is_correct(r"\frac{1}{2}", "0.5", "math500")
    assert is_correct(r"2\sqrt{2}", r"\sqrt{8}", "math500")
    assert is_correct(r"(x+1)^2", r"x^2+2x+1", "math")
    assert not is_correct(r"\frac{1}{3}", r"\frac{1}{2}", "math500")
    assert not is_correct("[1,2)", "(1,2)", "math500")
    # plain numbers are compared exactly, not rounded to 6 decimals
    assert not is_correct(".0000673", ".0000672", "math500")
    # numbers in another base keep their base
    assert not is_correct("52_8", "52_9", "math500")
    assert is_correct("52_{9}", "52_9", "math500")
    assert answers_equivalent(r"\dfrac{3}{4}", r"\frac34", "math500")


def test_reference_answer():
    assert reference_answer({"answer": "step\n#### 1,234"}, "gsm8k") == "1,234"
    assert reference_answer({"answer": r"\frac{1}{2}", "solution": "..."}, "math500") == r"\frac{1}{2}"
    assert reference_answer({"answer": "7"}, "toy") == "7"
    assert reference_answer({"solution": r"so $\boxed{9}$."}, "math") == "9"
    with pytest.raises(ValueError, match="answer"):
        reference_answer({"question": "q"}, "gsm8k")
    with pytest.raises(ValueError, match="answer"):
        reference_answer({"problem": "p"}, "math500")


# ----------------------------------------------------------------------------- dataset names


def test_grader_kind():
    assert GRADERS == {"toy": "numeric", "gsm8k": "numeric", "math500": "latex", "math": "latex",
                       "toy_code": "code", "mbpp": "code"}
    assert grader_kind("gsm8k") == "numeric" and grader_kind("mbpp") == grader_kind("code") == "code"
    assert grader_kind("math500") == "latex"
    assert grader_kind("numeric") == "numeric"
    assert grader_kind("latex") == "latex"


@pytest.mark.parametrize(
    "call",
    [
        lambda: grader_kind("aime"),
        lambda: extract_answer("The answer is 5", "aime"),
        lambda: normalize_answer("5", "aime"),
        lambda: is_correct("5", "5", "aime"),
        lambda: reference_answer({"answer": "5"}, "aime"),
    ],
)
def test_unknown_dataset_raises(call):
    with pytest.raises(ValueError, match="aime") as info:
        call()
    assert "gsm8k" in str(info.value)


# ----------------------------------------------------------------------------- properties

# answer graders; code is graded by running it (is_correct refuses it: tests/test_code_grading.py)
_DATASETS = st.sampled_from(sorted(g for g in GRADERS if grader_kind(g) != "code"))
_TOKENS = list("0123456789+-*/^_{}()[],.$% \\#:\nabcxyzFRAC") + [
    r"\frac", r"\dfrac", r"\sqrt", r"\text", r"\left", r"\right", r"^\circ", r"\!", r"\$",
    r"\boxed{", r"\fbox{", "ки", "The answer is:", "####", "<<", ">>",
]
_MATHY_TEXT = st.lists(st.sampled_from(_TOKENS), max_size=30).map("".join) | st.text(max_size=80)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_MATHY_TEXT, dataset=_DATASETS)
def test_extract_answer_never_raises(text, dataset):
    result = extract_answer(text, dataset)
    assert result is None or isinstance(result, str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prediction=_MATHY_TEXT | st.none(), reference=_MATHY_TEXT, dataset=_DATASETS)
def test_is_correct_never_raises(prediction, reference, dataset):
    assert isinstance(is_correct(prediction, reference, dataset), bool)
    assert isinstance(answers_equivalent(prediction, reference, dataset), bool)


_NUMERIC_STRINGS = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.integers(-(10**12), 10**12).map(lambda n: f"{n:,}"),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(lambda d: f"{d:f}"),
    st.from_regex(r"\$?[+-]?\d{1,7}(\.\d{0,4})?\.?", fullmatch=True),
    st.from_regex(r"-?\d{1,4}/\d{1,4}", fullmatch=True),
    st.text(max_size=20),
)


@settings(max_examples=500, deadline=None)
@given(raw=_NUMERIC_STRINGS)
def test_normalize_numeric_idempotent(raw):
    once = normalize_answer(raw, "gsm8k")
    assert normalize_answer(once, "gsm8k") == once
    assert is_correct(raw, once, "gsm8k")


@settings(max_examples=300, deadline=None)
@given(raw=_MATHY_TEXT)
def test_normalize_latex_idempotent(raw):
    once = normalize_answer(raw, "math500")
    assert normalize_answer(once, "math500") == once


def test_symbolic_grading_works_off_the_main_thread():
    # math_verify's signal-based timeouts fail off the main thread; grading must not.


    results = []
    worker = threading.Thread(
        target=lambda: results.append(
            (is_correct(r"\frac{1}{2}", "0.5", "math500"), is_correct("3", "4", "math500"))
        )
    )
    worker.start()
    worker.join(timeout=60)
    assert results == [(True, False)]


# ----------------------------------------------------------------------------- valid candidates


@pytest.mark.parametrize("text, finish_reason, expected", [
    ("Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки", "stop", "7"),
    ("Step 1: 3 + 4 = 7 ки\nThe answer is 7", "stop", "7"),  # no colon, ended by end-of-text: stated
    ("Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки", "length", "7"),  # closed by its tag before the cut
    ("Step 1: 3 + 4 = 7 ки\nThe answer is: 7\nStep 9: junk", "length", "7"),  # a later line: not truncated
    ("Step 1: 3 + 4 = 7 ки\nThe answer is: 4", "length", None),  # cut inside the answer line (45?)
    ("Step 1: 3 + 4 = 7 ки\nStep 2: 7 + 1 = 8 ки", "stop", None),  # never states an answer
    ("Step 1: 3 + 4 = 7 ки\nStep 2: 7 + 1 = 8 ки", "length", None),
    ("so 3 + 4 = 7\n#### 7", "stop", None),  # GSM8K reference style is not the policy's step format
    ("The answer is: ки", "stop", None),  # an empty answer
    ("The answer is: 3 ки\nThe answer is: 5 ки", "stop", "5"),  # the last statement wins
])
def test_candidate_answer_needs_a_stated_complete_answer(text, finish_reason, expected):
    assert candidate_answer(text, finish_reason, "gsm8k") == expected


def test_candidate_answer_reads_latex_answers():
    assert candidate_answer("Step 1: x ки\nThe answer is: $\\boxed{\\frac{1}{2}}$ ки", "stop", "math500") == "\\frac{1}{2}"
    assert candidate_answer("so \\boxed{3}", "stop", "math500") is None


# ----------------------------------------------------------------------------- edge cases (mutation testing)


def test_numeric_tolerance_is_one_in_a_million_relative():
    # Non-integers match within 1e-6 of the larger magnitude, inclusive; a 4-digit rounding of 1/3 is wrong.
    assert is_correct("0.333333", "1/3", "gsm8k")
    assert not is_correct("0.3334", "1/3", "gsm8k")
    assert not is_correct("0.33", "1/3", "gsm8k")
    assert is_correct("0.999999", "1.0", "gsm8k")  # |diff| = 1e-6 of the larger (1), not of the smaller
    assert is_correct("1.000001", "1", "gsm8k") and not is_correct("1.0000011", "1", "gsm8k")
    assert is_correct("-0.3333333", "-1/3", "gsm8k")  # negative numbers: the tolerance uses magnitudes
    assert is_correct("-1/3", "-0.3333333", "toy")
    assert not is_correct("0.3333333", "-1/3", "gsm8k")
    assert not is_correct("1450001", "1,450,000", "gsm8k")  # integers: exact


def test_numeric_answer_forms():
    for prediction, reference in [("$1,000.00", "1000"), ("50%", "50"), (r"50\%", "50"), (r"\frac{3}{4}", "0.75"),
                                  (r"\dfrac{-3}{4}", "-0.75"), ("007", "7"), ("+5", "5"), ("5.", "5"),
                                  ("1 000", "1000"), ("3/4", ".75"), (r"\$18", "18")]:
        assert is_correct(prediction, reference, "gsm8k"), (prediction, reference)
    for prediction, reference in [("75", "0.75"), ("3/5", "3/4"), ("-5", "5"), ("5", "50%0")]:
        assert not is_correct(prediction, reference, "gsm8k"), (prediction, reference)


def test_latex_plain_numbers_compare_exactly_but_within_tolerance():
    assert is_correct("0.5", "1/2", "math500")
    assert is_correct("0.3333333", "1/3", "math500")
    assert not is_correct("0.3334", "1/3", "math500")


def test_boxed_at_the_very_end_or_in_a_longer_command():
    # A bare \boxed with nothing after it (cut off by the token limit) is no answer, and never an error.
    assert extract_answer(r"so we get \boxed", "math500") is None
    assert extract_answer("so we get \\boxed  \t", "math500") is None
    # A longer command (\fboxsep) is no box: the last real box before it is the answer.
    assert extract_answer(r"\boxed{2} with \fboxsep=1pt", "math500") == "2"
    assert extract_answer(r"so $\boxed X$", "math500") == "X"  # the "\boxed x" form with a letter answer


def test_escaped_braces_inside_a_box_do_not_count():
    piecewise = r"\left\{ \begin{array}{ll} 1 & x > 0 \\ 0 & x \le 0 \end{array} \right."
    assert extract_answer(r"\boxed{1} so $f(x) = \boxed{" + piecewise + "}$", "math500") == piecewise
    assert normalize_answer(r"5\text{ cm}^2", "math500") == "5cm^2"  # text after an unwrapped command is kept
    assert normalize_answer(r"\text{a}\mbox{b}c", "math500") == "abc"


def test_answer_line_forms():
    assert extract_answer("The answer is: \\boxed{5}", "gsm8k") == "5"
    assert extract_answer("The answer is: $\\fbox{7}$.", "math500") == "7"
    assert extract_answer("#### 3\nThe answer is: \\boxed{5}", "gsm8k") == "5"  # the last marker, unboxed
    assert extract_answer("The answer is: XIX.", "math500") == "XIX"  # letters are kept, only the period goes
    assert extract_answer("The answer is: $XIV$ ки", "math500") == "XIV"
    assert extract_answer("The answer is 7", "gsm8k") == "7"  # without the colon too


def test_reference_answer_final_line_rules():
    # GSM8K: the text after the last "####", spaced or not; a row without one is refused with a clear message.
    assert reference_answer({"answer": "3 + 4 = 7\n####7"}, "gsm8k") == "7"
    assert reference_answer({"answer": "#### 3 was a typo\n#### 5"}, "gsm8k") == "5"
    with pytest.raises(ValueError, match=r"^GSM8K row's 'answer' field has no '#### N' final line$"):
        reference_answer({"answer": "so it is 7"}, "gsm8k")
    # Other numeric data sets accept GSM8K-style answers too; LaTeX ones never split on "####".
    assert reference_answer({"answer": "3 + 4 = 7\n#### 7"}, "toy") == "7"
    assert reference_answer({"answer": "7"}, "toy") == "7"
    assert reference_answer({"answer": r"a \#### b"}, "math500") == r"a \#### b"


def test_symbolic_checks_only_for_answer_sized_strings():
    # Up to 500 characters an answer is checked symbolically; a longer string is never a real answer (and could
    # make sympy crawl), so it is wrong without a check, on either side.
    sum_500 = "1+" * 249 + "10"  # = 259, exactly 500 characters
    assert len(sum_500) == 500
    assert is_correct(sum_500, "259", "math500") and is_correct("259", sum_500, "math500")
    sum_502 = "1+" * 250 + "10"  # = 260
    assert not is_correct(sum_502, "260", "math500") and not is_correct("260", sum_502, "math500")


def test_an_answer_math_verify_cannot_parse_is_wrong():
    assert not is_correct("}{", r"\frac{1}{2}", "math500")
    assert not is_correct(r"\frac{1}{2}", "}{", "math500")


def test_a_pathological_answer_is_graded_wrong_instead_of_hanging():
    # 9^(9^(9^9)) makes sympy compute forever; the 5 s timeout of math_verify (main thread) ends it, so a score
    # job never hangs on one model output. Both sides, since either is parsed.
    assert not is_correct(r"9^{9^{9^{9}}}", "2", "math500")
    assert not is_correct("2", r"9^{9^{9^{9}}}", "math500")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"\textbf{A}", "A"), (r"5\mathrm{cm}", "5cm"), (r"5\mbox{ cm}", "5cm"), (r"\text{(B)}", "(B)"),
        (r"\$18.90", "18.90"), (r"$\$5$", "5"), ("XIV", "XIV"), ("$XIX$.", "XIX"),
        (r"\Delta x", r"\Delta x"), (r"2\pi R", r"2\pi R"), (r"\alpha\beta", r"\alpha\beta"),
    ],
)
def test_normalize_latex_answer_forms(raw, expected):
    assert normalize_answer(raw, "math500") == expected


def test_an_unbalanced_command_does_not_stop_normalisation():
    # A truncated \text{ leaves the rest to normalise as usual.
    assert normalize_answer(r"\text{5 \text{cm}", "math500") == normalize_answer(r"\text{5 cm", "math500")


def test_normalize_numeric_keeps_the_sign():
    assert normalize_answer("-5.50", "gsm8k") == "-5.5"
    assert normalize_answer("-0.0", "gsm8k") == "0"
    assert is_correct("-0.5", "-1/2", "gsm8k")


def test_numeric_datasets_never_grade_symbolically():
    # GSM8K answers are numbers: an expression is not an answer there, though MATH accepts it.
    assert not is_correct("2+3", "5", "gsm8k") and not is_correct("5", "2+3", "toy")
    assert is_correct("2+3", "5", "math500")


def test_other_bases_and_empty_answers_are_wrong():
    assert not is_correct("52_9", "52", "math500") and not is_correct("52", "52_9", "math500")
    for empty in ("", " ", "$", "$$", "."):
        assert not is_correct(empty, "0", "math500") and not is_correct("0", empty, "math500")


def test_unknown_grader_message_lists_the_known_names():
    with pytest.raises(ValueError, match=r"^unknown grader 'aime'; known names: gsm8k, math, math500, mbpp, toy, "
                                         r"toy_code, numeric, latex, code$"):
        grader_kind("aime")
