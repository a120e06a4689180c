"""Process reward model training: a token-classification head read at step-tag positions, trained with BCE there
(scoring with a trained PRM: search/prm_scoring.py).

Training rows are Math-Shepherd rows: `input` (question and solution, a step tag after every step) and
`label` (the same text with `+` or `-` in place of each tag). Rows we label ourselves add `soft`, the
fraction of rollouts from that step that reached the reference answer.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from infscale.core.stepformat import parse_math_shepherd_labels
from infscale.search.prm_scoring import tag_token_positions
from infscale.training.sft import collator_for, run_training


def prm_targets(row: dict, use: str = "hard", where: str = "") -> list[float]:
    hard = parse_math_shepherd_labels(row["input"], row["label"], where=where)
    if use == "soft" and "soft" in row:
        soft = [float(s) for s in row["soft"]]
        if len(soft) != len(hard):
            raise ValueError(f"{where}{len(soft)} soft labels for {len(hard)} step tags")
        return soft
    if use not in ("hard", "soft"):
        raise ValueError(f"prm label must be 'hard' or 'soft', got {use!r}")
    return hard


def encode_prm_example(tokenizer, text: str, targets: Sequence[float], max_length: int, where: str = "",
                       prefix: list[int] | None = None) -> dict:
    """Token ids and per-token targets: the step's label at each tag token, -100 (ignored) elsewhere. The text
    follows the tokenizer's leading special tokens (`prefix`, default `models.leading_special_ids`), as the PRM
    reads it when scoring."""
    from infscale.core.models import leading_special_ids

    prefix = leading_special_ids(tokenizer) if prefix is None else prefix
    ids, positions = tag_token_positions(tokenizer, text)
    ids, positions = prefix + ids, [p + len(prefix) for p in positions]
    ids = ids[:max_length]
    cut = [p for p in positions if p < max_length]
    if len(positions) != len(targets):
        raise ValueError(f"{where}{len(positions)} step-tag tokens but {len(targets)} labels")
    labels = [-100.0] * len(ids)
    for p, y in zip(cut, targets):
        labels[p] = float(y)
    return {"input_ids": ids, "labels": labels}


def _bce_trainer_class():
    import torch
    from transformers import Trainer

    class BCEAtTagsTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            logits = outputs.logits.squeeze(-1)
            mask = labels != -100.0
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[mask], labels[mask])
            return (loss, outputs) if return_outputs else loss

    return BCEAtTagsTrainer


def load_prm_for_training(init_from: str | None, arch: dict | None, tokenizer, seed: int):
    """A 1-label token-classification model: from a policy checkpoint (as Math-Shepherd does) or from scratch."""
    import torch
    from transformers import GPTNeoXForTokenClassification

    from infscale.core.models import from_pretrained_for_training

    torch.manual_seed(seed)
    if init_from:  # under FSDP: read on rank 0 only, the other ranks on the meta device
        return from_pretrained_for_training("AutoModelForTokenClassification", init_from, num_labels=1)
    from infscale.core.models import gpt_neox_config

    config = gpt_neox_config(arch, tokenizer)
    config.num_labels = 1
    return GPTNeoXForTokenClassification(config)


def train_prm(rows: list[dict], tokenizer, model, train: dict, out_dir: str | Path, seed: int, threads: int = 1,
              label: str = "hard", source: str = "prm data") -> dict:
    from infscale.core.models import leading_special_ids

    max_length, prefix = int(train.get("max_length", 256)), leading_special_ids(tokenizer)
    examples = [
        encode_prm_example(tokenizer, r["input"], prm_targets(r, label, f"{source}: row {i + 1}: "), max_length,
                           f"{source}: row {i + 1}: ", prefix)
        for i, r in enumerate(rows)
    ]
    collator = collator_for(train, tokenizer.pad_token_id, label_pad=-100.0)
    return run_training(_bce_trainer_class(), model, tokenizer, examples, collator, train, out_dir, seed, threads,
                        label=label)
