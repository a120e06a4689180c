import os

import pytest

from infscale.core.io import atomic_path, read_jsonl, write_jsonl


def test_malformed_row_names_file_and_line(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text('{"question": "a", "answer": "1"}\n\n{"question": "b", \n')
    with pytest.raises(ValueError, match=r"data.jsonl:3: malformed JSON"):
        read_jsonl(p)


def test_missing_field_names_file_line_and_field(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text('{"question": "a", "answer": "1"}\n{"question": "b"}\n')
    with pytest.raises(ValueError, match=r"data.jsonl:2: missing field\(s\) answer"):
        read_jsonl(p, required=("question", "answer"))


def test_non_object_row(tmp_path):
    p = tmp_path / "data.jsonl"
    p.write_text('[1, 2]\n')
    with pytest.raises(ValueError, match=r":1: expected a JSON object"):
        read_jsonl(p)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.jsonl"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    p = tmp_path / "out.jsonl"
    write_jsonl(p, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("killed halfway")

    with pytest.raises(RuntimeError):
        write_jsonl(p, rows())
    assert read_jsonl(p) == [{"a": 1}]
    assert os.listdir(tmp_path) == ["out.jsonl"]  # no temp file left behind


def test_atomic_path_creates_parents(tmp_path):
    with atomic_path(tmp_path / "a" / "b.txt") as tmp:
        tmp.write_text("x")
    assert (tmp_path / "a" / "b.txt").read_text() == "x"
