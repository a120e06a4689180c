"""Supervised fine-tuning of a policy on step-format solutions, loss on the completion only."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .io import atomic_dir
from .stepformat import STEP_TAG, format_prompt

log = logging.getLogger(__name__)


def encode_sft_example(tokenizer, question: str, solution: str, max_length: int) -> dict:
    """Prompt tokens get label -100 so the loss covers the solution (and its end-of-text) only."""
    prompt_ids = tokenizer.encode(format_prompt(question), add_special_tokens=False)
    completion_ids = tokenizer.encode(solution, add_special_tokens=False) + [tokenizer.eos_token_id]
    ids = (prompt_ids + completion_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + completion_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


class PadCollator:
    """Right-pads a batch; padded label positions are ignored by the loss."""

    def __init__(self, pad_id: int, label_key: str = "labels", label_pad=-100):
        self.pad_id, self.label_key, self.label_pad = pad_id, label_key, label_pad

    def __call__(self, batch):
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        label_dtype = torch.float if isinstance(self.label_pad, float) else torch.long
        labels = torch.full((len(batch), width), self.label_pad, dtype=label_dtype)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            mask[i, :n] = 1
            labels[i, :n] = torch.tensor(b[self.label_key], dtype=label_dtype)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def batch_layout(train: dict, world_size: int = 1) -> tuple[int, int]:
    """(examples per device and step, gradient accumulation steps) that make up the global `batch_size`."""
    batch = int(train["batch_size"])
    micro = int(train.get("micro_batch_size") or max(1, batch // world_size))
    if batch % (micro * world_size):
        raise ValueError(f"train.batch_size {batch} is not a multiple of micro_batch_size {micro} x {world_size} "
                         "processes")
    return micro, batch // (micro * world_size)


def training_arguments(out_dir: str, train: dict, seed: int, threads: int):
    """Trainer arguments from the config's `train` block (steps or epochs, global batch size, lr, dtype, ...);
    CPU-friendly, and the same under `accelerate launch` on several GPUs (WORLD_SIZE processes)."""
    import os

    import torch
    from transformers import TrainingArguments

    torch.set_num_threads(threads)
    micro, accumulation = batch_layout(train, int(os.environ.get("WORLD_SIZE", "1")))
    dtype = train.get("dtype", "fp32")
    length = {"max_steps": int(train["steps"])} if "steps" in train else {"num_train_epochs": float(train["epochs"])}
    return TrainingArguments(
        output_dir=out_dir,
        **length,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        learning_rate=float(train["lr"]),
        warmup_steps=int(train.get("warmup_steps", 0)),
        weight_decay=float(train.get("weight_decay", 0.0)),
        lr_scheduler_type=train.get("lr_scheduler", "cosine"),
        logging_steps=max(1, int(train["steps"]) // 20) if "steps" in train else 10,
        bf16=dtype == "bf16",
        fp16=dtype == "fp16",
        gradient_checkpointing=bool(train.get("gradient_checkpointing", False)),
        save_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )


class _ListDataset:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def run_training(trainer_class, model, tokenizer, examples: list[dict], collator, train: dict,
                 out_dir: str | Path, seed: int, threads: int = 1, **summary_extra) -> dict:
    """Train with `trainer_class` (a transformers Trainer), then save model, tokenizer and a training summary
    (loss log, step tag, `summary_extra`) to out_dir atomically: a killed run leaves no checkpoint behind.
    Under `accelerate launch` (WORLD_SIZE > 1, e.g. FSDP) every process trains and the Trainer gathers the
    weights; the main process writes and renames the directory."""
    import os
    import shutil

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _run_distributed(trainer_class, model, tokenizer, examples, collator, train, Path(out_dir), seed,
                                threads, **summary_extra)
    with atomic_dir(out_dir) as tmp:
        args = training_arguments(str(Path(tmp) / "trainer"), train, seed, threads)
        trainer = trainer_class(model=model, args=args, train_dataset=_ListDataset(examples), data_collator=collator)
        summary = _train(trainer, len(examples), summary_extra)
        shutil.rmtree(Path(tmp) / "trainer", ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "training_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _train(trainer, n_examples: int, summary_extra: dict) -> dict:
    from .progress import trainer_callback

    trainer.add_callback(trainer_callback("training"))  # steps done, rate, time left in the job's log
    start = time.time()
    result = trainer.train()
    return {"train_loss": result.training_loss, "steps": result.global_step, "examples": n_examples,
            "seconds": round(time.time() - start, 1), "step_tag": STEP_TAG, **summary_extra,
            "log": [h for h in trainer.state.log_history if "loss" in h]}


def _run_distributed(trainer_class, model, tokenizer, examples, collator, train, out_dir: Path, seed, threads,
                     **summary_extra) -> dict:
    """Several processes: a fixed temp directory beside out_dir that every rank agrees on; `trainer.save_model`
    gathers sharded (FSDP) weights and writes on the main process only, which then renames into place."""
    import os
    import shutil

    tmp = out_dir.parent / f".{out_dir.name}.distributed.tmp"
    args = training_arguments(str(tmp / "trainer"), train, seed, threads)
    trainer = trainer_class(model=model, args=args, train_dataset=_ListDataset(examples), data_collator=collator)
    summary = _train(trainer, len(examples), summary_extra)
    trainer.save_model(str(tmp))
    trainer.accelerator.wait_for_everyone()
    if trainer.is_world_process_zero():
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "training_summary.json").write_text(json.dumps(summary, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    trainer.accelerator.wait_for_everyone()
    return summary


def train_policy(rows: list[dict], tokenizer, model, train: dict, out_dir: str | Path, seed: int, threads: int = 1) -> dict:
    """Train `model` on rows with `question` and `solution`; save model + tokenizer atomically to out_dir."""
    from transformers import Trainer

    max_length = int(train.get("max_length", 256))
    examples = [encode_sft_example(tokenizer, r["question"], r["solution"], max_length) for r in rows]
    return run_training(Trainer, model, tokenizer, examples, PadCollator(tokenizer.pad_token_id), train, out_dir,
                        seed, threads)
