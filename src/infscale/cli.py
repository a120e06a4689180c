"""`infscale-grade`: grade a JSONL file of predictions against reference answers (the public grading API on the
command line). Each row holds a model output (`--text-field`, the answer is extracted from it) or an already
extracted answer (`--prediction-field`), and the reference (`--reference-field`; GSM8K's `#### N` is understood).

    infscale-grade predictions.jsonl --dataset math500 --output graded.jsonl

prints the accuracy (and per level when rows have one) and, with --output, writes every row with `extracted`
and `correct` added. A row without the fields it needs stops the run naming file and line; an output with no
answer in it grades wrong."""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict

from infscale.core.grading import GRADERS, extract_answer, is_correct, reference_answer
from infscale.core.io import read_jsonl, write_jsonl


def grade_rows(rows: list[dict], dataset: str, text_field: str | None = "text", prediction_field: str | None = None,
               reference_field: str = "answer", where: str = "predictions",
               last_number_fallback: bool = False) -> list[dict]:
    """Rows with `extracted` (the predicted answer, None when none is found) and `correct` added."""
    out = []
    for i, row in enumerate(rows, start=1):
        field = prediction_field or text_field
        if field not in row:
            raise ValueError(f"{where}:{i}: no {field!r} field (keys: {', '.join(sorted(row))})")
        if reference_field not in row:
            raise ValueError(f"{where}:{i}: no {reference_field!r} field (keys: {', '.join(sorted(row))})")
        ref = str(row[reference_field])  # a GSM8K solution ending in "#### N", or the answer itself
        reference = reference_answer({"answer": ref}, dataset) if "####" in ref else ref.strip()
        predicted = row[field] if prediction_field else extract_answer(row[field], dataset, last_number_fallback)
        out.append({**row, "extracted": predicted, "correct": is_correct(predicted, reference, dataset)})
    return out


def summary(graded: list[dict]) -> dict:
    """Accuracy overall and per difficulty level (when rows carry `level`)."""
    result = {"n": len(graded), "correct": sum(r["correct"] for r in graded),
              "no_answer": sum(r["extracted"] is None for r in graded)}
    result["accuracy"] = result["correct"] / result["n"] if graded else 0.0
    levels = defaultdict(list)
    for r in graded:
        if r.get("level") is not None:
            levels[str(r["level"])].append(r["correct"])
    if levels:
        result["accuracy_by_level"] = {k: sum(v) / len(v) for k, v in sorted(levels.items())}
    return result


def grade_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infscale-grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", help="JSONL file, one prediction per row")
    parser.add_argument("--dataset", required=True, choices=sorted(GRADERS) + ["numeric", "latex"],
                        help="grader: gsm8k/toy/numeric (numbers) or math500/math/latex (LaTeX answers)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--text-field", default="text", help="model output to extract the answer from (default text)")
    what.add_argument("--prediction-field", help="an already extracted answer (instead of --text-field)")
    parser.add_argument("--reference-field", default="answer", help="reference answer (default answer)")
    parser.add_argument("--last-number-fallback", action="store_true",
                        help="numeric data sets: take the last number of a text that states no answer (off by default)")
    parser.add_argument("--output", help="write the graded rows (extracted, correct) to this JSONL file")
    args = parser.parse_args(argv)
    try:
        graded = grade_rows(read_jsonl(args.predictions), args.dataset, args.text_field, args.prediction_field,
                            args.reference_field, where=args.predictions,
                            last_number_fallback=args.last_number_fallback)
    except (ValueError, FileNotFoundError) as e:
        print(f"infscale-grade: {e}", file=sys.stderr)
        return 2
    if args.output:
        write_jsonl(args.output, graded)
    print(json.dumps(summary(graded)))
    return 0


if __name__ == "__main__":
    sys.exit(grade_main())
