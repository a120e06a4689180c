"""MBPP, Mostly Basic Python Problems (Austin et al. 2021, arXiv 2108.07732; CC-BY-4.0, google-research/
google-research `mbpp/`): the release files, checked against their published checksums, or the hub copy
`google-research-datasets/mbpp`, read into rows of our schema.

Config (a `datasets` entry): `format: mbpp` (974 tasks, `mbpp.jsonl`) or `mbpp_sanitized` (427 hand-verified
tasks, `sanitized-mbpp.json`); `source: jsonl` with `files: {test: .../mbpp.jsonl}` (a split of ours picks its
task ids from the whole file) or `source: hub` with `hub: {id: google-research-datasets/mbpp, config: full,
splits: {test: test}}`. Splits by task id: 1-10 few-shot prompts, 11-510 test, 511-600 validation, 601-974
train (our `prm` split reads train: a PRM learns only from train tasks).

A row: id (`mbpp/<task_id>`), task_id, question (the task text), tests (the asserts), setup (code the tests need
first: `test_setup_code`, or the sanitized set's `test_imports`), code (the reference solution), challenge_tests,
source (the attribution line, so every file derived from the data carries it).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

ATTRIBUTION = ("MBPP: Austin et al. 2021, 'Program Synthesis with Large Language Models' (arXiv 2108.07732), "
               "google-research/google-research mbpp/, CC-BY-4.0")
HUB_ID = "google-research-datasets/mbpp"

# The public release: file name, rows, bytes, sha256 (../shared/data/README.md)
RELEASES = {
    "mbpp": ("mbpp.jsonl", 974, 563743, "ccf64ceae9c5403bf50a044cb6d505bfd2a2963ee58338ba268fd65beab92a9f"),
    "mbpp_sanitized": ("sanitized-mbpp.json", 427, 255053,
                       "ca95deaa9a01ef0a6f439f88bcf0dd3db3563d22f22aad6cae04ebb9a8d8c8e9"),
}
HUB_CONFIGS = {"mbpp": "full", "mbpp_sanitized": "sanitized"}
FORMATS = tuple(RELEASES)

# task ids of each split (inclusive); ours (train, prm, test) and the release's own names
SPLIT_IDS = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600), "train": (601, 974), "prm": (601, 974)}
# tasks in each split of each release (the sanitized set keeps the ids of the full one)
SPLIT_SIZES = {"mbpp": {"prompt": 10, "test": 500, "validation": 90, "train": 374, "prm": 374},
               "mbpp_sanitized": {"prompt": 7, "test": 257, "validation": 43, "train": 120, "prm": 120}}


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_release(path: str | Path, fmt: str, where: str = "") -> None:
    """Fail loudly unless `path` is the release file of `fmt`, byte for byte."""
    name, _, size, sha = RELEASES[fmt]
    path = Path(path)
    prefix = f"{where}: " if where else ""
    if not path.is_file():
        raise FileNotFoundError(f"{prefix}{path}: no such file (MBPP's {name}, {ATTRIBUTION})")
    got = sha256_of(path)
    if got != sha:
        raise ValueError(f"{prefix}{path}: sha256 {got} is not that of the public {name} ({sha}, {size} bytes); "
                         f"use the unmodified release")


def read_release(path: str | Path, fmt: str) -> list[dict]:
    """All rows of a release file (JSONL for mbpp, one JSON array for mbpp_sanitized), checksum verified."""
    verify_release(path, fmt)
    text = Path(path).read_text(encoding="utf-8")
    if fmt == "mbpp_sanitized":
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def normalise_mbpp(row: dict, where: str) -> dict:
    """One task in our schema (module docstring)."""
    for field in ("task_id", "code", "test_list"):
        if field not in row:
            raise ValueError(f"{where}: MBPP row has no {field!r} field (keys: {sorted(row)})")
    question = row.get("text", row.get("prompt"))
    if question is None:
        raise ValueError(f"{where}: MBPP row has neither 'text' nor 'prompt'")
    setup = row.get("test_setup_code", "")
    if "test_imports" in row:
        setup = "\n".join(row["test_imports"])
    return {"id": f"mbpp/{row['task_id']}", "task_id": int(row["task_id"]), "question": question.strip(),
            "tests": list(row["test_list"]), "setup": setup or "", "code": row["code"].replace("\r\n", "\n"),
            "challenge_tests": list(row.get("challenge_test_list") or []), "source": ATTRIBUTION}


def load_hub_dataset(hub_id: str, split: str, config_name: str) -> list[dict]:
    """The hub copy (needs network and the `hub` extra), as infscale.core.data reads the math sets."""
    from datasets import load_dataset

    return [dict(r) for r in load_dataset(hub_id, config_name, split=split)]


def in_split(task_id: int, split: str) -> bool:
    low, high = SPLIT_IDS[split]
    return low <= task_id <= high


def mbpp_split(dataset: dict, split: str) -> tuple[list[dict], str]:
    """Normalised rows of one split of an MBPP data set (config block) and where they came from; fails loudly
    when the file is missing, is not the release, or the split does not have the release's size."""
    fmt = dataset.get("format", "mbpp")
    if fmt not in RELEASES:
        raise ValueError(f"format {fmt!r} is not an MBPP release (one of {', '.join(RELEASES)})")
    if split not in SPLIT_IDS:
        raise ValueError(f"MBPP has no split {split!r} (one of {', '.join(SPLIT_IDS)})")
    files = dataset.get("files", {})
    if split in files:
        where = str(files[split])
        verify_release(files[split], fmt, where=f"config key files.{split}")
        raw = read_release(files[split], fmt)
    elif dataset.get("source") == "hub":
        hub = dataset.get("hub", {})
        hub_split = hub.get("splits", {}).get(split, "train" if split == "prm" else split)
        where = f"{hub.get('id', HUB_ID)}[{hub.get('config', HUB_CONFIGS[fmt])}/{hub_split}]"
        raw = load_hub_dataset(hub.get("id", HUB_ID), hub_split, hub.get("config", HUB_CONFIGS[fmt]))
    else:
        raise ValueError(f"MBPP data set has no {split!r} file (config key files.{split})")
    rows = [normalise_mbpp(r, f"{where}:{i}") for i, r in enumerate(raw, start=1)]
    rows = [r for r in rows if in_split(r["task_id"], split)]
    expected = SPLIT_SIZES[fmt][split]
    if len(rows) != expected:
        raise ValueError(f"{where}: {len(rows)} tasks with ids {SPLIT_IDS[split][0]}-{SPLIT_IDS[split][1]}, "
                         f"the release has {expected}")
    return sorted(rows, key=lambda r: r["task_id"]), where


def reference_program(row: dict) -> tuple[str, list[str]]:
    """(program, tests) that run_program grades for a task's reference solution: the code, then its setup
    code, then each assert."""
    program = row["code"] + ("\n\n" + row["setup"] if row.get("setup") else "")
    return program, list(row["tests"])
