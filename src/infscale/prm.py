"""Process reward model: a token-classification head read at step-tag positions, trained with BCE there.

Training rows are Math-Shepherd rows: `input` (question and solution, a step tag after every step) and
`label` (the same text with `+` or `-` in place of each tag). Rows we label ourselves add `soft`, the
fraction of rollouts from that step that reached the reference answer.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from .sft import PadCollator, run_training
from .stepformat import STEP_TAG, check_step_tag_agreement, close_last_step, format_prompt
from .tokenizer import ensure_step_tag_token


def parse_math_shepherd_labels(input_text: str, label_text: str, tag: str = STEP_TAG, where: str = "") -> list[float]:
    """Hard labels (1.0 for `+`, 0.0 for `-`) of the tags in `input_text`, read from `label_text`."""
    pieces = input_text.split(tag)
    labels, pos = [], 0
    for piece in pieces[:-1]:
        if label_text[pos : pos + len(piece)] != piece or pos + len(piece) >= len(label_text):
            raise ValueError(f"{where}label does not match input around character {pos}: expected {piece[-30:]!r}")
        pos += len(piece)
        mark = label_text[pos]
        if mark not in "+-":
            raise ValueError(f"{where}expected '+' or '-' at a step tag, found {mark!r}")
        labels.append(1.0 if mark == "+" else 0.0)
        pos += 1
    if label_text[pos:] != pieces[-1]:
        raise ValueError(f"{where}label text differs from input after the last step tag")
    if not labels:
        raise ValueError(f"{where}input has no step tag {tag!r}")
    return labels


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


def encode_prm_example(tokenizer, text: str, targets: Sequence[float], max_length: int, where: str = "") -> dict:
    """Token ids and per-token targets: the step's label at each tag token, -100 (ignored) elsewhere."""
    tag_id = ensure_step_tag_token(tokenizer)
    ids = tokenizer.encode(text, add_special_tokens=False)[:max_length]
    positions = [i for i, t in enumerate(ids) if t == tag_id]
    if len(positions) > len(targets) or (len(ids) < max_length and len(positions) != len(targets)):
        raise ValueError(f"{where}{len(positions)} step-tag tokens but {len(targets)} labels")
    labels = [-100.0] * len(ids)
    for p, y in zip(positions, targets):
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
    from transformers import AutoModelForTokenClassification, GPTNeoXForTokenClassification

    torch.manual_seed(seed)
    if init_from:
        return AutoModelForTokenClassification.from_pretrained(init_from, num_labels=1)
    from .models import gpt_neox_config

    config = gpt_neox_config(arch, tokenizer)
    config.num_labels = 1
    return GPTNeoXForTokenClassification(config)


def train_prm(rows: list[dict], tokenizer, model, train: dict, out_dir: str | Path, seed: int, threads: int = 1,
              label: str = "hard", source: str = "prm data") -> dict:
    max_length = int(train.get("max_length", 256))
    examples = [
        encode_prm_example(tokenizer, r["input"], prm_targets(r, label, f"{source}: row {i + 1}: "), max_length,
                           f"{source}: row {i + 1}: ")
        for i, r in enumerate(rows)
    ]
    return run_training(_bce_trainer_class(), model, tokenizer, examples,
                        PadCollator(tokenizer.pad_token_id, label_pad=-100.0), train, out_dir, seed, threads, label=label)


def is_causal_lm_prm(path: str | Path) -> bool:
    """A released Math-Shepherd-style PRM is a causal LM that scores a step by P(+) against P(-) at its tag;
    ours is a token-classification model. The checkpoint's own config tells them apart."""
    from transformers import AutoConfig

    architectures = getattr(AutoConfig.from_pretrained(str(path)), "architectures", None) or []
    return any(a.endswith("ForCausalLM") for a in architectures)


def _last_token_id(tokenizer, text: str) -> int:
    return tokenizer.encode(text, add_special_tokens=False)[-1]


class ProcessRewardModel:
    """Scores solutions: one probability per step tag. Reads `format_prompt(question) + solution`.

    Two kinds of checkpoints: ours (a scalar token-classification head; score = sigmoid at the tag token) and
    released causal-LM PRMs in the Math-Shepherd convention (score = softmax over the logits of `+` and `-` at
    the tag; a tokenizer that splits the tag is read at the tag's last piece)."""

    def __init__(self, path: str, batch_size: int = 64, threads: int | None = None, device: str | None = None):
        from .models import load_for_inference

        self.plus_minus = is_causal_lm_prm(path)
        auto_class = "AutoModelForCausalLM" if self.plus_minus else "AutoModelForTokenClassification"
        self.tokenizer, self.model, self.device = load_for_inference(path, auto_class, "right", threads, device)
        if self.plus_minus:
            self.tag_id = _last_token_id(self.tokenizer, " " + STEP_TAG)
            self.label_ids = [_last_token_id(self.tokenizer, " +"), _last_token_id(self.tokenizer, " -")]
        else:
            self.tag_id = ensure_step_tag_token(self.tokenizer)
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.batch_size = batch_size

    def score(self, questions: Sequence[str], solutions: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        """Per-step scores of each (question, solution) and the number of tokens the PRM read for it.

        Every step is scored, a trailing one without a tag too (`close_last_step`). Solutions longer than the
        PRM's context are cut from the left of the question, never the steps."""
        import torch

        encoded = []
        for q, s in zip(questions, solutions):
            ids = self.tokenizer.encode(format_prompt(q) + close_last_step(s), add_special_tokens=False)
            encoded.append(ids[-self.context_length :])
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths per batch
        scores: list[list[float]] = [[] for _ in encoded]
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            width = max(len(encoded[i]) for i in idx)
            ids = torch.full((len(idx), width), self.tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(idx):
                ids[r, : len(encoded[i])] = torch.tensor(encoded[i])
                mask[r, : len(encoded[i])] = 1
            with torch.inference_mode():
                logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            if self.plus_minus:
                probs = torch.softmax(logits[..., self.label_ids].float(), dim=-1)[..., 0].cpu()
            else:
                probs = torch.sigmoid(logits.squeeze(-1).float()).cpu()
            for r, i in enumerate(idx):
                tags = (ids[r] == self.tag_id) & (mask[r] == 1)
                scores[i] = probs[r][tags].tolist()
        return scores, [len(e) for e in encoded]


def score_records(prm: ProcessRewardModel, records: list[dict]) -> None:
    """Add `step_scores` and `prm_tokens` to every candidate that has none, in one batched pass.
    Tree-search candidates were scored while searching (same PRM): they are kept, not read twice."""
    todo = [(r["question"], c) for r in records for c in r["candidates"] if "step_scores" not in c]
    scores, tokens = prm.score([q for q, _ in todo], [c["text"] for _, c in todo])
    for (_, c), s, t in zip(todo, scores, tokens):
        c["step_scores"], c["prm_tokens"] = s, t


def step_tag_of(model_dir: str | Path) -> str:
    """The step tag a checkpoint was trained with (recorded in its training summary; default the Math-Shepherd tag)."""
    summary = Path(model_dir) / "training_summary.json"
    return json.loads(summary.read_text()).get("step_tag", STEP_TAG) if summary.exists() else STEP_TAG


def check_pairing(policy_dir: str | Path, prm_dir: str | Path) -> None:
    """Refuse a PRM that would score at a tag the policy never writes."""
    check_step_tag_agreement(step_tag_of(policy_dir), step_tag_of(prm_dir), where=f"{policy_dir} with {prm_dir}: ")
