"""The public grading API (infscale.extract_answer / is_correct) on MATH500's kinds of answers, and the
`infscale-grade` command on the real GSM8K and MATH500 reference solutions."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infscale import extract_answer, is_correct
from infscale.cli import grade_main

HERE = Path(__file__).resolve()
SHARED = next((p for p in (HERE.parents[2] / "shared" / "data", HERE.parents[1] / "shared" / "data") if p.is_dir()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data (real GSM8K/MATH500 files) not present")


@pytest.mark.parametrize("prediction, reference, right", [
    ("0.5", r"\frac{1}{2}", True), (r"\dfrac12", r"\frac{1}{2}", True), (r"\frac{1}{3}", r"\frac{1}{2}", False),
    (r"(-\infty,3]", r"(-\infty, 3]", True), (r"(-\infty, 3)", r"(-\infty, 3]", False),
    (r"(3,\frac{\pi}{2})", r"\left( 3, \frac{\pi}{2} \right)", True), (r"(3, \pi)", r"\left( 3, \frac{\pi}{2} \right)", False),
    ("Evelyn", r"\text{Evelyn}", True), ("Emily", r"\text{Evelyn}", False),
    ("90", r"90^\circ", True), (r"45^\circ", r"90^\circ", False),
    (r"5 \text{cm}", r"5\text{ cm}", True), ("6", r"5\text{ cm}", False),
    (r"\$18.90", "18.90", True), ("C", r"\text{(C)}", True), ("(A)", r"\text{(C)}", False),
    (r"2\sqrt{2}", r"\sqrt{8}", True), ("10.1", "10", False),
])
def test_math500_answer_kinds(prediction, reference, right):
    assert is_correct(prediction, reference, "math500") is right


def test_extract_then_grade_gsm8k_and_math():
    assert extract_answer("Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки", "gsm8k") == "7"
    assert extract_answer("so she pays $1,250.", "gsm8k") is None  # states no answer
    assert is_correct(extract_answer("so she pays $1,250.", "gsm8k", last_number_fallback=True), "1250", "gsm8k")
    assert extract_answer(r"Thus $x=\boxed{\frac{3}{4}}$.", "math500") == r"\frac{3}{4}"
    assert extract_answer("no answer here", "math500") is None and not is_correct(None, "1", "math500")


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _rows(name):
    return [json.loads(line) for line in (SHARED / name).read_text().splitlines() if line.strip()]


@needs_shared
def test_cli_grades_every_real_reference_solution_correct(tmp_path, capsys):
    gsm = [{"text": r["answer"], "answer": r["answer"]} for r in _rows("gsm8k_test.jsonl")]
    assert grade_main([_write(tmp_path / "g.jsonl", gsm), "--dataset", "gsm8k"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 1319, "correct": 1319, "no_answer": 0, "accuracy": 1.0}
    math = [{"text": r["solution"], "answer": r["answer"], "level": r["level"]} for r in _rows("math500_test.jsonl")]
    out = tmp_path / "graded.jsonl"
    assert grade_main([_write(tmp_path / "m.jsonl", math), "--dataset", "math500", "--output", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 1.0 and set(result["accuracy_by_level"]) == {"1", "2", "3", "4", "5"}
    graded = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(graded) == 500 and all(g["correct"] and g["extracted"] for g in graded)


@needs_shared
def test_cli_grades_perturbed_answers_wrong(tmp_path, capsys):
    gsm = [{"prediction": str(int(r["answer"].rsplit("####", 1)[1].replace(",", "")) + 1), "answer": r["answer"]}
           for r in _rows("gsm8k_test.jsonl")[:200]]
    assert grade_main([_write(tmp_path / "g.jsonl", gsm), "--dataset", "gsm8k", "--prediction-field", "prediction"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] == 0
    math = [{"prediction": r["answer"] + "+1", "answer": r["answer"]} for r in _rows("math500_test.jsonl")[:100]]
    assert grade_main([_write(tmp_path / "m.jsonl", math), "--dataset", "math500", "--prediction-field", "prediction"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] == 0


def test_cli_names_file_and_line_of_a_bad_row(tmp_path, capsys):
    path = _write(tmp_path / "p.jsonl", [{"text": "The answer is: 3", "answer": "3"}, {"answer": "4"}])
    assert grade_main([path, "--dataset", "gsm8k"]) == 2
    assert "p.jsonl:2: no 'text' field" in capsys.readouterr().err


def test_cli_last_number_fallback_only_when_asked(tmp_path, capsys):
    path = _write(tmp_path / "p.jsonl", [{"text": "3 apples plus 4 make 7", "answer": "7"}])
    assert grade_main([path, "--dataset", "gsm8k"]) == 0
    assert json.loads(capsys.readouterr().out)["no_answer"] == 1
    assert grade_main([path, "--dataset", "gsm8k", "--last-number-fallback"]) == 0
    assert json.loads(capsys.readouterr().out)["correct"] == 1


def test_cli_is_installed_as_a_command(tmp_path):
    path = _write(tmp_path / "p.jsonl", [{"text": r"so \boxed{\frac{1}{2}}", "answer": "0.5"}])
    exe = Path(sys.executable).with_name("infscale-grade")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "infscale.cli"]
    result = subprocess.run([*cmd, path, "--dataset", "math500"], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout)["accuracy"] == 1.0
