from pathlib import Path

import pytest

from infscale.data import prepare_split, training_texts
from infscale.io import read_jsonl

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
