"""Checkpointed shards: reuse of finished shards, never of stale or foreign ones; atomic writes on a full disk."""
import errno
import os
import subprocess

import pytest

from infscale.core.io import read_jsonl, write_jsonl
from infscale.search.shards import discard, fingerprint, run_in_shards

ITEMS = [{"id": f"p{i}", "x": i} for i in range(7)]


def square(calls):
    def work(shard, i):
        calls.append(i)
        return [{"id": r["id"], "y": r["x"] ** 2, "shard": i} for r in shard]
    return work


def test_all_shards_computed_in_order(tmp_path):
    calls = []
    records, report = run_in_shards(ITEMS, 3, tmp_path / "ck", "s1", square(calls))
    assert [r["y"] for r in records] == [i * i for i in range(7)]
    assert [r["shard"] for r in records] == [0, 0, 0, 1, 1, 1, 2]
    assert calls == [0, 1, 2] and (report.shards, report.reused, report.computed) == (3, 0, 3)
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "fingerprint", "shard-00000.jsonl", "shard-00001.jsonl", "shard-00002.jsonl"]


def test_interrupted_run_resumes_after_its_last_finished_shard(tmp_path):
    calls = []

    def dies_in_shard_2(shard, i):
        if i == 2:
            raise KeyboardInterrupt  # as a kill would, halfway through the job
        return square(calls)(shard, i)

    with pytest.raises(KeyboardInterrupt):
        run_in_shards(ITEMS, 2, tmp_path / "ck", "s1", dies_in_shard_2)
    assert not (tmp_path / "ck" / "shard-00002.jsonl").exists()
    finished = {p: os.stat(tmp_path / "ck" / p).st_mtime_ns for p in ("shard-00000.jsonl", "shard-00001.jsonl")}

    calls.clear()
    records, report = run_in_shards(ITEMS, 2, tmp_path / "ck", "s1", square(calls))
    assert calls == [2, 3] and (report.reused, report.computed) == (2, 2)
    assert {p: os.stat(tmp_path / "ck" / p).st_mtime_ns for p in finished} == finished  # not rewritten
    uninterrupted, _ = run_in_shards(ITEMS, 2, tmp_path / "other", "s1", square([]))
    assert records == uninterrupted


def test_shards_of_other_work_are_discarded(tmp_path):
    run_in_shards(ITEMS, 3, tmp_path / "ck", "old parameters", square([]))
    calls = []
    _, report = run_in_shards(ITEMS, 3, tmp_path / "ck", "new parameters", square(calls))
    assert calls == [0, 1, 2] and report.reused == 0


def test_a_shard_of_other_problems_is_recomputed(tmp_path):
    run_in_shards(ITEMS, 3, tmp_path / "ck", "s", square([]))
    calls = []
    other = [{"id": "q", "x": 5}] + ITEMS[1:]  # same fingerprint, but shard 0 now holds other problems
    records, report = run_in_shards(other, 3, tmp_path / "ck", "s", square(calls))
    assert calls == [0] and records[0] == {"id": "q", "y": 25, "shard": 0} and report.reused == 2


def test_bad_shard_size(tmp_path):
    with pytest.raises(ValueError, match="shard_size must be positive"):
        run_in_shards(ITEMS, 0, tmp_path, "s", square([]))


def test_fingerprint_follows_params_file_contents_and_model_files(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text("a\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights").write_bytes(b"12")
    base = fingerprint({"n": 4}, [data, model])
    assert fingerprint({"n": 4}, [data, model]) == base
    assert fingerprint({"n": 8}, [data, model]) != base
    data.write_text("b\n")
    assert fingerprint({"n": 4}, [data, model]) != base
    data.write_text("a\n")
    assert fingerprint({"n": 4}, [data, model]) == base
    (model / "weights").write_bytes(b"123")  # retrained
    assert fingerprint({"n": 4}, [data, model]) != base


def test_discard(tmp_path):
    run_in_shards(ITEMS, 3, tmp_path / "ck", "s", square([]))
    discard(tmp_path / "ck")
    assert not (tmp_path / "ck").exists()
    discard(tmp_path / "ck")  # already gone: fine


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_during_a_shard_keeps_finished_shards_and_no_partial_one(tmp_path, monkeypatch):
    from infscale.search import shards

    real = shards.write_jsonl
    written = []

    def fills_up(path, rows):
        if written:
            _no_space()
        written.append(path)
        real(path, rows)

    monkeypatch.setattr(shards, "write_jsonl", fills_up)
    with pytest.raises(OSError, match="No space left"):
        run_in_shards(ITEMS, 3, tmp_path / "ck", "s", square([]))
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["fingerprint", "shard-00000.jsonl"]
    monkeypatch.setattr(shards, "write_jsonl", real)
    calls = []
    run_in_shards(ITEMS, 3, tmp_path / "ck", "s", square(calls))
    assert calls == [1, 2]


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 64 KiB file system (tmpfs), where mounting is allowed (root, as in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_real_full_disk_leaves_the_old_output_and_no_temp_file(tiny_disk):
    out = tiny_disk / "generations.jsonl"
    write_jsonl(out, [{"id": "old"}])
    with pytest.raises(OSError) as e:
        write_jsonl(out, ({"id": i, "text": "x" * 1000} for i in range(200)))  # ~200 KB into 64 KiB
    assert e.value.errno == errno.ENOSPC
    assert read_jsonl(out) == [{"id": "old"}]
    assert os.listdir(tiny_disk) == ["generations.jsonl"]


def test_fingerprint_ignores_key_order_and_takes_paths_in_params(tmp_path):
    # Parameters assembled in another order are the same work: their shards must be reused.
    assert fingerprint({"n": 4, "temperature": 0.8}) == fingerprint({"temperature": 0.8, "n": 4})
    assert fingerprint({"n": 4, "t": {"a": 1, "b": 2}}) == fingerprint({"t": {"b": 2, "a": 1}, "n": 4})
    # Values JSON lacks (a model path) are fingerprinted by their text.
    assert fingerprint({"model": tmp_path / "a"}) == fingerprint({"model": str(tmp_path / "a")})
    assert fingerprint({"model": tmp_path / "a"}) != fingerprint({"model": tmp_path / "b"})


def test_shards_of_one_item_in_a_new_nested_directory(tmp_path, caplog):
    calls = []
    with caplog.at_level("INFO", logger="infscale.search.shards"):
        records, report = run_in_shards(ITEMS[:3], 1, tmp_path / "out" / "gen.jsonl.shards", "s", square(calls))
    assert calls == [0, 1, 2] and [r["shard"] for r in records] == [0, 1, 2]
    assert (report.shards, report.computed) == (3, 3)
    assert caplog.messages[:3] == ["shard 0 computed (1 items)", "shard 1 computed (1 items)",
                                   "shard 2 computed (1 items)"]
    assert caplog.messages[3].startswith("shards of 1: 3/3 problems (100%)")  # progress, logged at the end
    assert len(caplog.messages) == 4
