from pathlib import Path

import pytest

from infscale.core.data import prepare_split, training_texts
from infscale.core.io import read_jsonl

SHARED = next((p for p in (Path(__file__).resolve().parents[i] / "shared" / "data" for i in (1, 2)) if p.exists()), None)
needs_shared = pytest.mark.skipif(SHARED is None, reason="../shared/data (real GSM8K/MATH500 files) not present")


def test_toy_split_rows(tmp_path):
    ds = {"source": "toy", "grader": "toy", "toy": {"n_train": 50, "n_prm": 5, "n_test": 10, "seed": 1}}
    prepare_split(ds, "test", tmp_path / "test.jsonl")
    rows = read_jsonl(tmp_path / "test.jsonl", required=("id", "question", "answer", "solution", "level"))
    assert len(rows) == 10
    assert training_texts(rows)[0].startswith(rows[0]["question"] + "\n")


@needs_shared
def test_gsm8k_file_normalised(tmp_path):
    ds = {"source": "jsonl", "grader": "gsm8k", "files": {"test": str(SHARED / "gsm8k_test.jsonl")}}
    prepare_split(ds, "test", tmp_path / "t.jsonl")
    rows = read_jsonl(tmp_path / "t.jsonl")
    assert len(rows) == 1319
    assert rows[0]["answer"] == "18"  # the text after ####, not the whole reasoning
    assert all(r["answer"] and "####" not in r["answer"] for r in rows)


@needs_shared
def test_math500_keeps_levels_and_subjects(tmp_path):
    ds = {"source": "jsonl", "grader": "math500", "files": {"test": str(SHARED / "math500_test.jsonl")}}
    prepare_split(ds, "test", tmp_path / "m.jsonl")
    rows = read_jsonl(tmp_path / "m.jsonl")
    assert len(rows) == 500 and {r["level"] for r in rows} == {1, 2, 3, 4, 5}
    assert len({r["subject"] for r in rows}) == 7 and rows[0]["id"].startswith("test/")


def test_bad_rows_name_file_and_line(tmp_path):
    src = tmp_path / "src.jsonl"
    src.write_text('{"question": "q1", "answer": "#### 3"}\n{"question": "q2"}\n')
    ds = {"source": "jsonl", "grader": "gsm8k", "files": {"test": str(src)}}
    with pytest.raises(ValueError, match=r"src.jsonl:2: .*answer"):
        prepare_split(ds, "test", tmp_path / "out.jsonl")
    src.write_text('{"text": "q1", "answer": "#### 3"}\n')
    with pytest.raises(ValueError, match=r"src.jsonl:1: missing question field"):
        prepare_split(ds, "test", tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_missing_split_file_is_named(tmp_path):
    ds = {"source": "jsonl", "grader": "gsm8k", "files": {"test": str(tmp_path / "absent.jsonl")}}
    with pytest.raises(FileNotFoundError, match="absent.jsonl"):
        prepare_split(ds, "test", tmp_path / "out.jsonl")
    with pytest.raises(ValueError, match="files.train"):
        prepare_split(ds, "train", tmp_path / "out.jsonl")


# Rows in the released formats of the paper's training sets (written here: tests never download).
METAMATH = [
    {"query": "Janet has 3 apples and buys 4 more. How many apples does she have?",
     "response": "Janet starts with 3 apples.\nShe buys 4 more, so she has 3 + 4 = 7 apples.\nThe answer is: 7",
     "type": "GSM_AnsAug", "original_question": "..."},
    {"query": "What is $\\frac{1}{2}+\\frac{1}{4}$?",
     "response": "We have $\\frac{1}{2}=\\frac{2}{4}$.\n\nSo the sum is $\\frac{3}{4}$.\nThe answer is: \\frac{3}{4}",
     "type": "MATH_Rephrased", "original_question": "..."},
    {"query": "If x + 2 = 5, what is x?", "response": "Subtracting 2 gives x = 3. The answer is: 3",
     "type": "GSM_SV", "original_question": "..."},
]
SHEPHERD = {
    "input": "Tom has 2 cats and 3 dogs. How many pets? Step 1: 2 + 3 = 5 ки\nStep 2: The answer is: 5 ки",
    "label": "Tom has 2 cats and 3 dogs. How many pets? Step 1: 2 + 3 = 5 +\nStep 2: The answer is: 5 +",
    "task": "GSM8K",
}


def _write(path, rows):
    import json

    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_metamath_rows_become_step_format(tmp_path):
    from infscale.core.grading import extract_answer, is_correct
    from infscale.core.stepformat import STEP_TAG, split_steps

    ds = {"source": "jsonl", "format": "metamath", "grader": "math",
          "files": {"train": _write(tmp_path / "mm.jsonl", METAMATH)}}
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    rows = read_jsonl(tmp_path / "out.jsonl", required=("id", "question", "answer", "solution", "type"))
    assert [r["answer"] for r in rows] == ["7", "\\frac{3}{4}", "3"]
    first = rows[0]["solution"]
    assert first == ("Step 1: Janet starts with 3 apples. ки\nStep 2: She buys 4 more, so she has 3 + 4 = 7 apples. ки\n"
                     "The answer is: 7 ки")
    assert len(split_steps(rows[1]["solution"])) == 3  # the blank line is no step
    for r in rows:  # what the policy learns to write is what the grader reads
        assert r["solution"].endswith(STEP_TAG) and is_correct(extract_answer(r["solution"], "math"), r["answer"], "math")


def test_metamath_types_keep_the_gsm8k_part(tmp_path):
    ds = {"source": "jsonl", "format": "metamath", "grader": "gsm8k", "types": ["GSM_"],
          "files": {"train": _write(tmp_path / "mm.jsonl", METAMATH)}}
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    assert [r["type"] for r in read_jsonl(tmp_path / "out.jsonl")] == ["GSM_AnsAug", "GSM_SV"]
    ds["types"] = ["MATH_FOBAR"]
    with pytest.raises(ValueError, match="no MetaMath row of type MATH_FOBAR"):
        prepare_split(ds, "train", tmp_path / "out2.jsonl")


def test_metamath_row_without_answer_names_the_line(tmp_path):
    bad = METAMATH[:1] + [{"query": "q", "response": "no final answer here", "type": "GSM_AnsAug"}]
    ds = {"source": "jsonl", "format": "metamath", "grader": "gsm8k", "files": {"train": _write(tmp_path / "mm.jsonl", bad)}}
    with pytest.raises(ValueError, match=r"mm.jsonl:2: .*The answer is"):
        prepare_split(ds, "train", tmp_path / "out.jsonl")


def test_math_shepherd_rows_pass_through_checked(tmp_path):
    from infscale.training.prm_training import prm_targets

    bad = dict(SHEPHERD, label=SHEPHERD["label"].replace("5 +\nStep 2", "5 ?\nStep 2"))
    ds = {"source": "jsonl", "format": "math_shepherd", "files": {"train": _write(tmp_path / "ms.jsonl", [SHEPHERD, bad])}}
    with pytest.raises(ValueError, match=r"ms.jsonl:2: expected '\+' or '-'"):
        prepare_split(ds, "train", tmp_path / "out.jsonl")
    ds["files"]["train"] = _write(tmp_path / "ms.jsonl", [SHEPHERD, dict(SHEPHERD, label=SHEPHERD["label"][:-1] + "-")])
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    rows = read_jsonl(tmp_path / "out.jsonl", required=("id", "input", "label", "task"))
    assert [prm_targets(r) for r in rows] == [[1.0, 1.0], [1.0, 0.0]]
    # trained on what the PRM reads when scoring: format_prompt(question) + solution
    assert rows[0]["input"].startswith("Tom has 2 cats and 3 dogs. How many pets?\nStep 1: 2 + 3 = 5 ки")
    assert rows[0]["label"].startswith("Tom has 2 cats and 3 dogs. How many pets?\nStep 1: 2 + 3 = 5 +")


def test_hub_source_uses_a_local_file_override_without_network(tmp_path, monkeypatch):
    from infscale.core import data

    def no_hub(*a, **k):
        raise AssertionError("the hub must not be read for a split with a local file")

    monkeypatch.setattr(data, "load_hub_dataset", no_hub)
    ds = {"source": "hub", "format": "metamath", "grader": "gsm8k", "hub": {"id": "meta-math/MetaMathQA", "splits": {"train": "train"}},
          "files": {"train": _write(tmp_path / "mm.jsonl", METAMATH)}}
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 3
    with pytest.raises(ValueError, match="hub.splits.test"):
        prepare_split(ds, "test", tmp_path / "t.jsonl")


def test_hub_source_reads_the_named_hub_split(tmp_path, monkeypatch):
    from infscale.core import data

    calls = []

    def fake_hub(hub_id, split, config_name=None):
        calls.append((hub_id, split, config_name))
        return [{"question": "1 + 1?", "answer": "It is 2.\n#### 2"}]

    monkeypatch.setattr(data, "load_hub_dataset", fake_hub)
    ds = {"source": "hub", "grader": "gsm8k", "hub": {"id": "openai/gsm8k", "config": "main", "splits": {"test": "test"}}}
    prepare_split(ds, "test", tmp_path / "t.jsonl")
    assert calls == [("openai/gsm8k", "test", "main")]
    assert read_jsonl(tmp_path / "t.jsonl")[0]["answer"] == "2"


def test_metamath_gsm_marker_line_is_no_step(tmp_path):
    """Real MetaMathQA GSM responses end with `#### N` before "The answer is: N"; the PRM never saw such a step."""
    row = {"query": "Tom has 3 apples and buys 4. How many?", "type": "GSM_AnsAug",
           "response": "Tom has 3 + 4 = 7 apples.\n#### 7\nThe answer is: 7"}
    ds = {"source": "jsonl", "format": "metamath", "grader": "gsm8k", "files": {"train": _write(tmp_path / "mm.jsonl", [row])}}
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    (out,) = read_jsonl(tmp_path / "out.jsonl")
    assert out["solution"] == "Step 1: Tom has 3 + 4 = 7 apples. ки\nThe answer is: 7 ки" and "####" not in out["solution"]


def test_a_few_malformed_rows_are_skipped_and_named(tmp_path, capsys):
    good = METAMATH[0]
    bad = {"query": "q", "response": "no final answer here", "type": "GSM_AnsAug"}
    rows = [good] * 999 + [bad]  # 0.1%: within the default max_malformed
    ds = {"source": "jsonl", "format": "metamath", "grader": "gsm8k", "files": {"train": _write(tmp_path / "mm.jsonl", rows)}}
    prepare_split(ds, "train", tmp_path / "out.jsonl")
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 999
    out = capsys.readouterr().out
    assert "1 of 1000 rows malformed" in out and "mm.jsonl:1000: " in out
    ds["files"]["train"] = _write(tmp_path / "mm2.jsonl", [good] * 998 + [bad, bad])  # 0.2%: too many
    with pytest.raises(ValueError, match=r"2 of 1000 rows malformed .*max_malformed.*mm2.jsonl:999"):
        prepare_split(ds, "train", tmp_path / "out2.jsonl")
    ds["max_malformed"] = 0.01
    prepare_split(ds, "train", tmp_path / "out2.jsonl")
    assert len(read_jsonl(tmp_path / "out2.jsonl")) == 998
