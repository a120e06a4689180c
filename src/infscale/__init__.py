"""infscale: a reproducible pipeline for compute-optimal inference (Wu et al. 2024).

Public grading API: `extract_answer(text, dataset)`, `candidate_answer(text, finish_reason, dataset)` (the answer a
policy candidate states, None when it is invalid) and `is_correct(prediction, reference, dataset)` (dataset: gsm8k,
math500, math, toy, or the kinds numeric / latex); `infscale-grade` grades a JSONL file of predictions."""
from infscale.core.grading import candidate_answer, extract_answer, is_correct

__all__ = ["candidate_answer", "extract_answer", "is_correct"]
