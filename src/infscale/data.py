"""Data sets: the generated toy task, local JSONL files, and (with network) the hub originals."""
from __future__ import annotations

from pathlib import Path

from .grading import reference_answer
from .io import read_jsonl, write_jsonl
from .stepformat import format_prompt
from .toytask import make_splits

# Field names of the known sources, mapped to ours (question, answer, solution, level).
QUESTION_FIELDS = ("question", "problem", "query")


def normalise_row(row: dict, grader: str, where: str) -> dict:
    """A row in our schema: id, question, answer (the reference), solution when known, level when known."""
    question = next((row[f] for f in QUESTION_FIELDS if f in row), None)
    if question is None:
        raise ValueError(f"{where}: missing question field (one of {', '.join(QUESTION_FIELDS)})")
    try:
        answer = reference_answer(row, grader)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    out = {"id": str(row.get("unique_id", row.get("id", where))), "question": question, "answer": answer}
    if "solution" in row:
        out["solution"] = row["solution"]
    if "level" in row:
        out["level"] = row["level"]
    if "subject" in row:
        out["subject"] = row["subject"]
    return out


def prepare_split(dataset: dict, split: str, out_path: str | Path) -> None:
    """Write one split of a data set (config block `dataset`) in our schema."""
    if dataset["source"] == "toy":
        t = dataset.get("toy", {})
        splits = make_splits(t.get("n_train", 20000), t.get("n_prm", 300), t.get("n_test", 200), t.get("seed", 0),
                             tuple(t.get("levels", (1, 5))), t.get("carry_rate", 0.5))
        write_jsonl(out_path, splits[split])
        return
    path = dataset["files"].get(split)
    if path is None:
        raise ValueError(f"data set has no {split!r} file (config key files.{split})")
    rows = read_jsonl(path)
    write_jsonl(out_path, [normalise_row(r, dataset["grader"], f"{path}:{i}") for i, r in enumerate(rows, start=1)])


def training_texts(rows: list[dict]) -> list[str]:
    """What a policy reads in SFT: prompt followed by the step-format solution."""
    return [format_prompt(r["question"]) + r["solution"] for r in rows]


def load_hub_dataset(hub_id: str, split: str, config_name: str | None = None) -> list[dict]:
    """The original from the Hugging Face hub (needs network and the `hub` extra); tests use local files."""
    from datasets import load_dataset

    return [dict(r) for r in load_dataset(hub_id, config_name, split=split)]
