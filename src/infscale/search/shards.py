"""Resumable work in shards: a long job writes each finished shard atomically beside its output and, when it
is rerun after a kill, reads the shards already on disk instead of computing them again.

A fingerprint of everything the result depends on (parameters, input files) is stored with the shards; shards
of other work (a changed parameter, a retrained model) are discarded, never mixed in.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from infscale.core.io import read_jsonl, write_jsonl, write_text
from infscale.core.progress import Progress

FINGERPRINT = "fingerprint"
log = logging.getLogger(__name__)


def fingerprint(params: dict, paths: Sequence[str | Path] = ()) -> str:
    """A digest of `params` (JSON-able) and of the input paths: file contents for files, and the name, size and
    modification time of every file under a directory (model checkpoints are too large to hash on every run)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in map(Path, paths):
        h.update(f"\0{path}\0".encode())
        if path.is_dir():
            for f in sorted(p for p in path.rglob("*") if p.is_file()):
                st = f.stat()
                h.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
        else:
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@dataclass
class ShardReport:
    shards: int = 0
    reused: int = 0  # finished by an earlier, interrupted run
    computed: int = 0

    def __str__(self) -> str:
        return f"{self.shards} shards: {self.reused} reused from an interrupted run, {self.computed} computed"


def run_in_shards(items: Sequence[dict], shard_size: int, shard_dir: str | Path, stamp: str,
                  work: Callable[[list[dict], int], list[dict]], key: str = "id") -> tuple[list[dict], ShardReport]:
    """`work(items of shard i, i)` for each shard of `shard_size` items, in order, returning all records.

    Shard i is `shard_dir/shard-{i:05d}.jsonl`, written atomically when its work returns. A shard on disk
    is reused when the directory's fingerprint equals `stamp` and its records' `key`s are its items' keys."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    directory = Path(shard_dir)
    stamp_file = directory / FINGERPRINT
    if directory.exists() and (not stamp_file.exists() or stamp_file.read_text() != stamp):
        shutil.rmtree(directory)  # shards of other work
    directory.mkdir(parents=True, exist_ok=True)
    write_text(stamp_file, stamp)
    report, records = ShardReport(), []
    progress = Progress(len(items), f"shards of {shard_size}", "problems", log=log)
    for i, start in enumerate(range(0, len(items), shard_size)):
        shard = list(items[start : start + shard_size])
        path = directory / f"shard-{i:05d}.jsonl"
        done = read_jsonl(path) if path.exists() else None
        if done is not None and [r.get(key) for r in done] == [r.get(key) for r in shard]:
            report.reused += 1
            progress.update(len(shard), skipped=True)
        else:
            done = work(shard, i)
            write_jsonl(path, done)
            report.computed += 1
            log.info("shard %d computed (%d items)", i, len(shard))
            progress.update(len(shard))
        report.shards += 1
        records.extend(done)
    return records, report


def shard_dir_of(output: str | Path) -> str:
    """Where the job writing `output` keeps its finished shards."""
    return f"{output}.shards"


def discard(shard_dir: str | Path) -> None:
    """Remove shards that can no longer be needed: call it from a job that reads the sharded job's output. By
    then Snakemake has recorded that job as complete; the job itself can't know that, since a kill after it
    writes its output, before Snakemake records it, makes Snakemake delete the output and run the job again
    (which then reuses every shard)."""
    shutil.rmtree(shard_dir, ignore_errors=True)
