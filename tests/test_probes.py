"""The default study's two probes (benchmarks/voting_vs_greedy.py, benchmarks/prm_learnability.py): the numbers
docs/default-study.md quotes come from these functions, so they are checked on hand-made inputs."""
from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _solution(*steps: str, answer: str) -> str:
    lines = [f"Step {i}: {s} ки" for i, s in enumerate(steps, start=1)]
    return "\n".join(lines + [f"The answer is: {answer} ки"])


def test_error_shapes_tells_a_carried_slip_from_a_second_one_and_a_lucky_answer(tmp_path):
    shapes = _load("voting_vs_greedy").error_shapes
    q = "Compute 20 + 3 + 4."  # 23, 27
    candidates = [
        _solution("20 + 3 = 23", "23 + 4 = 27", answer="27"),  # right
        _solution("20 + 3 = 24", "24 + 4 = 28", answer="28"),  # slip at step 1, carried unchanged
        _solution("20 + 3 = 24", "24 + 4 = 29", answer="29"),  # slip, then a second one
        _solution("20 + 3 = 24", "24 + 4 = 27", answer="27"),  # two slips that cancel: right through a slip
        _solution("20 + 3 = 23", "23 + 4 = 27", answer="26"),  # only the answer line wrong: nothing after it
    ]
    rec = {"question": q, "reference": "27",
           "candidates": [{"text": t, "answer": re.findall(r"is: (\d+)", t)[0]} for t in candidates]}
    path = tmp_path / "seed0.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    got = shapes(path)
    assert got["wrong"] == 3 and got["right"] == 2
    assert got["propagated"] == pytest.approx(2 / 3)  # the carried slip and the answer-line slip
    assert got["right_through_slip"] == pytest.approx(1 / 2)
    assert got["top_wrong_share"] == pytest.approx(1 / 3)  # 28, 29, 26: no wrong answer repeats
    assert got["right_orders"] == 1  # both right candidates take the question's order (the slip one too)


def test_error_shapes_counts_orders_of_right_candidates_and_agreeing_wrong_answers(tmp_path):
    shapes = _load("voting_vs_greedy").error_shapes
    q = "Compute 20 + 3 + 4."
    candidates = [
        _solution("20 + 3 = 23", "23 + 4 = 27", answer="27"),
        _solution("20 + 4 = 24", "24 + 3 = 27", answer="27"),  # the other order: right
        _solution("20 + 3 = 23", "23 + 3 = 26", answer="26"),  # + 3 twice
        _solution("20 + 4 = 24", "24 + 2 = 26", answer="26"),  # another error, the same wrong answer
        _solution("20 + 3 = 24", "24 + 4 = 28", answer="28"),
    ]
    rec = {"question": q, "reference": "27",
           "candidates": [{"text": t, "answer": re.findall(r"is: (\d+)", t)[0]} for t in candidates]}
    single = {"question": "Compute 20 + 3.", "reference": "23",  # level 1: one order only, not counted
              "candidates": [{"text": _solution("20 + 3 = 23", answer="23"), "answer": "23"}]}
    path = tmp_path / "seed0.jsonl"
    path.write_text(json.dumps(rec) + "\n" + json.dumps(single) + "\n")
    got = shapes(path)
    assert got["right_orders"] == 2 and got["problems_with_right"] == 1
    assert got["top_wrong_share"] == pytest.approx(2 / 3) and got["problems_with_wrong"] == 1


def test_probe_rows_label_each_step_by_its_own_arithmetic_and_continue_from_the_written_number():
    probe = _load("prm_learnability")
    questions = [f"Compute {10 + i % 80} + 3 - 2 + 5 - 1." for i in range(400)]
    rows = probe.probe_rows(questions, "local", seed=0)
    wrong = total = 0
    for r in rows:
        steps = re.findall(r"Step \d+: (\d+) ([+-]) (\d+) = (\d+) ки", r["input"])
        value = int(r["input"].split()[1])
        for (a, op, b, c), y in zip(steps, r["soft"]):
            assert int(a) == value  # each step starts from the number the previous one wrote
            right = (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)
            assert y == float(right)
            wrong += not right
            total += 1
            value = int(c)
        assert r["soft"][-1] == 1.0 and r["input"].rstrip().endswith(f"The answer is: {value} ки")
    assert 0.25 < wrong / total < 0.35  # the 30% error rate (clipping at 0 never applies to these questions)
    even = probe.probe_rows(questions[:50], "even", seed=0)
    for r in even:
        results = [int(c) for c in re.findall(r"= (\d+) ки", r["input"])]
        assert r["soft"][:-1] == [float(c % 2 == 0) for c in results]


def test_base_rate_loss_is_the_entropy_of_the_best_constant_per_position():
    probe = _load("prm_learnability")
    rows = [{"soft": [1.0, 0.0, 1.0]}, {"soft": [1.0, 1.0, 1.0]}, {"soft": [0.0, 1.0]}]
    # positions: first step (1, 1, 0 -> p 2/3), second step of a 3-step row (0, 1 -> 1/2), answer lines (1, 1, 1)
    h = lambda p: -(p * math.log(p) + (1 - p) * math.log(1 - p))  # noqa: E731
    want = (3 * h(2 / 3) + 2 * h(1 / 2) + 0) / 8
    assert probe.base_rate_loss(rows) == pytest.approx(want, rel=1e-6)
