"""Data sets: the generated toy task, local JSONL files, and (with network) the hub originals."""
from __future__ import annotations

import re
from pathlib import Path

from infscale.core import mbpp
from infscale.core.grading import reference_answer
from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.stepformat import STEP_TAG, format_prompt, format_solution
from infscale.core.toytask import make_splits

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


_GSM_MARKER = re.compile(r"^\s*####")
_ANSWER_LINE = re.compile(r"\n?\s*The answer is:?\s*", re.IGNORECASE)


def metamath_solution(response: str, where: str = "") -> tuple[list[str], str]:
    """A MetaMathQA response as (steps, answer): one step per non-empty line before the final
    "The answer is: X" (the paper converts MetaMath to the step format; its code is not released)."""
    parts = _ANSWER_LINE.split(response)
    if len(parts) < 2 or not parts[-1].strip():
        raise ValueError(f"{where}: MetaMath response has no final 'The answer is: X'")
    answer = parts[-1].strip().splitlines()[0].strip()
    body = "\n".join(parts[:-1]).replace(STEP_TAG, " ")
    # GSM8K-derived responses end with "#### N" before "The answer is: N": GSM8K's own answer marker, not a step
    # (Math-Shepherd's rows, which the PRM learns from, have no such line)
    steps = [line.strip() for line in body.splitlines() if line.strip() and not _GSM_MARKER.match(line)]
    if not steps:
        raise ValueError(f"{where}: MetaMath response has no reasoning before its answer")
    return steps, answer


def normalise_metamath(row: dict, where: str) -> dict:
    """MetaMathQA row (query, response, type, original_question) -> id, question, answer, solution, type."""
    for field in ("query", "response"):
        if field not in row:
            raise ValueError(f"{where}: MetaMath row has no {field!r} field (keys: {sorted(row)})")
    steps, answer = metamath_solution(row["response"], where)
    out = {"id": str(row.get("id", where)), "question": row["query"].strip(), "answer": answer,
           "solution": format_solution(steps, answer)}
    if "type" in row:
        out["type"] = row["type"]
    return out


FIRST_STEP = "Step 1:"


def normalise_math_shepherd(row: dict, where: str) -> dict:
    """Math-Shepherd row: `input` (question, then steps each ending with the tag) and `label` (the same text
    with + or - in place of each tag); checked here so a bad row fails at preparation, naming its line. The
    released rows put a space between question and "Step 1:"; the PRM scores `format_prompt(question) + solution`
    (a newline), so the question is rewritten that way to train on what it will read."""
    from infscale.core.stepformat import parse_math_shepherd_labels

    for field in ("input", "label"):
        if field not in row:
            raise ValueError(f"{where}: Math-Shepherd row has no {field!r} field (keys: {sorted(row)})")
    parse_math_shepherd_labels(row["input"], row["label"], where=f"{where}: ")
    text, label = row["input"], row["label"]
    start = text.find(FIRST_STEP)
    if start > 0 and label[:start] == text[:start]:  # the question as our PRM reads it: format_prompt(question)
        prompt = format_prompt(text[:start])
        text, label = prompt + text[start:], prompt + label[start:]
    out = {"id": str(row.get("id", where)), "input": text, "label": label}
    if "task" in row:
        out["task"] = row["task"]
    return out


def source_rows(dataset: dict, split: str) -> tuple[list[dict], str]:
    """Raw rows of one split and where they come from: a local `files` entry wins, else the hub (source hub)."""
    files = dataset.get("files", {})
    if split in files:
        return read_jsonl(files[split]), str(files[split])
    if dataset["source"] == "hub":
        hub = dataset["hub"]
        if split not in hub["splits"]:
            raise ValueError(f"data set has no {split!r} split (config key hub.splits.{split} or files.{split})")
        where = f"{hub['id']}[{hub['splits'][split]}]"
        return load_hub_dataset(hub["id"], hub["splits"][split], hub.get("config")), where
    raise ValueError(f"data set has no {split!r} file (config key files.{split})")


MALFORMED_SHOWN = 5  # malformed rows named in the log


def _convert_tolerantly(rows, convert, max_share: float, where: str, log=None) -> list[dict]:
    """Convert each (line, row); malformed rows (a ValueError naming them) are skipped and counted, the first few
    named in the log; more than `max_share` of the rows malformed is an error (a wrong format, not a bad row)."""
    out, bad = [], []
    for i, r in rows:
        try:
            out.append(convert(r, f"{where}:{i}"))
        except ValueError as e:
            bad.append(str(e))
    total = len(out) + len(bad)
    if bad:
        message = (f"{where}: {len(bad)} of {total} rows malformed ({len(bad) / total:.2%}), skipped; first: "
                   + "; ".join(bad[:MALFORMED_SHOWN]))
        if len(bad) > max_share * total:
            raise ValueError(message.replace("skipped", f"more than the {max_share:.2%} allowed (config key "
                                                        "datasets.<slug>.max_malformed)"))
        (log or print)(message)
    return out


def normalise_rows(rows: list[dict], dataset: dict, where: str, log=None) -> list[dict]:
    """Rows in our schema by the data set's `format` (problems, metamath, math_shepherd). Released training
    sets (metamath, math_shepherd; 395k and 445k rows) may hold a few malformed rows: up to
    `max_malformed` of them are skipped and reported."""
    fmt = dataset.get("format", "problems")
    max_share = float(dataset.get("max_malformed", 0.001))
    numbered = list(enumerate(rows, start=1))
    if fmt == "metamath":
        types = tuple(dataset.get("types", ()))
        kept = [(i, r) for i, r in numbered if not types or str(r.get("type", "")).startswith(types)]
        out = _convert_tolerantly(kept, normalise_metamath, max_share, where, log)
        if not out:
            raise ValueError(f"{where}: no MetaMath row of type {', '.join(types)} (config key types)")
        return out
    if fmt == "math_shepherd":
        return _convert_tolerantly(numbered, normalise_math_shepherd, max_share, where, log)
    return [normalise_row(r, dataset["grader"], f"{where}:{i}") for i, r in numbered]


def prepare_split(dataset: dict, split: str, out_path: str | Path) -> None:
    """Write one split of a data set (config block `dataset`) in our schema."""
    if dataset["source"] == "toy":
        t = dataset.get("toy", {})
        splits = make_splits(t.get("n_train", 20000), t.get("n_prm", 300), t.get("n_test", 200), t.get("seed", 0),
                             tuple(t.get("levels", (1, 5))), t.get("carry_rate", 0.5), t.get("order", "question"),
                             t.get("carry_free", "question_order"), t.get("solutions_per_question", 1))
        write_jsonl(out_path, splits[split])
        return
    if dataset["source"] == "toy_code":
        from infscale.core.codetask import make_splits as make_code_splits

        t = dataset.get("toy_code", {})
        splits = make_code_splits(t.get("n_train", 4000), t.get("n_prm", 100), t.get("n_test", 100), t.get("seed", 0),
                                  t.get("held_out", 8))
        write_jsonl(out_path, splits[split])
        return
    if dataset.get("format") in mbpp.FORMATS:  # code tasks: release files checked byte for byte, split by task id
        write_jsonl(out_path, mbpp.mbpp_split(dataset, split)[0])
        return
    rows, where = source_rows(dataset, split)
    write_jsonl(out_path, normalise_rows(rows, dataset, where))


def training_texts(rows: list[dict]) -> list[str]:
    """What a policy reads in SFT: prompt followed by the step-format solution."""
    return [format_prompt(r["question"]) + r["solution"] for r in rows]


def load_hub_dataset(hub_id: str, split: str, config_name: str | None = None) -> list[dict]:
    """The original from the Hugging Face hub (needs network and the `hub` extra); tests use local files."""
    from datasets import load_dataset

    return [dict(r) for r in load_dataset(hub_id, config_name, split=split)]

