"""Supervised fine-tuning of a policy on step-format solutions, loss on the completion only."""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from infscale.core.io import atomic_dir
from infscale.core.stepformat import STEP_TAG, format_prompt
from infscale.training.memory import micro_batch

log = logging.getLogger(__name__)


def encode_sft_example(tokenizer, question: str, solution: str, max_length: int,
                       prefix: list[int] | None = None) -> dict:
    """Prompt tokens get label -100 so the loss covers the solution (and its end-of-text) only. The prompt starts
    with the tokenizer's leading special tokens (`prefix`, default `models.leading_special_ids`: its BOS, where
    it adds one), as generation and the PRM read it."""
    from infscale.core.models import leading_special_ids

    prefix = leading_special_ids(tokenizer) if prefix is None else prefix
    prompt_ids = prefix + tokenizer.encode(format_prompt(question), add_special_tokens=False)
    completion_ids = tokenizer.encode(solution, add_special_tokens=False) + [tokenizer.eos_token_id]
    ids = (prompt_ids + completion_ids)[:max_length]
    labels = ([-100] * len(prompt_ids) + completion_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


def encode_sft_examples(tokenizer, rows: list[dict], max_length: int, prefix: list[int] | None = None) -> list[dict]:
    """`encode_sft_example` of every row (`question`, `solution`), the same ids: each distinct text is tokenised
    once, all of them in one batched call of a fast tokenizer (20,000 rows one call at a time took ~30 s of a
    training job)."""
    from infscale.core.models import leading_special_ids

    prefix = leading_special_ids(tokenizer) if prefix is None else prefix
    texts = list(dict.fromkeys(t for r in rows for t in (format_prompt(r["question"]), r["solution"])))
    ids = dict(zip(texts, tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []))
    out = []
    for r in rows:
        prompt_ids = prefix + ids[format_prompt(r["question"])]
        completion_ids = ids[r["solution"]] + [tokenizer.eos_token_id]
        out.append({"input_ids": (prompt_ids + completion_ids)[:max_length],
                    "labels": ([-100] * len(prompt_ids) + completion_ids)[:max_length]})
    return out


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


class PackCollator:
    """Concatenates a micro-batch's examples into one row (`train.packing`): position ids restart at 0 for each
    example, so transformers' SDPA and eager attention build a mask that keeps attention within each example
    (masking_utils.find_packed_sequence_indices, with no attention mask and no cache: the model's use_cache must be
    off). An example's first label is never a target (prompt tokens are -100; a PRM's first token is no tag), so
    the loss never predicts across a boundary."""

    def __init__(self, label_key: str = "labels", label_pad=-100):
        self.label_key, self.label_pad = label_key, label_pad

    def __call__(self, batch):
        import torch

        label_dtype = torch.float if isinstance(self.label_pad, float) else torch.long
        ids, labels, positions = [], [], []
        for b in batch:
            ids += b["input_ids"]
            labels += [self.label_pad] + list(b[self.label_key][1:])  # never a target across a boundary
            positions += range(len(b["input_ids"]))
        return {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels], dtype=label_dtype),
                "position_ids": torch.tensor([positions])}


def collator_for(train: dict, pad_id: int, label_pad=-100):
    """PackCollator under `train.packing`, else PadCollator."""
    return PackCollator(label_pad=label_pad) if train.get("packing") else PadCollator(pad_id, label_pad=label_pad)


def batch_layout(train: dict, world_size: int = 1) -> tuple[int, int]:
    """(examples per device and step, gradient accumulation steps) that make up the global `batch_size`."""
    batch = int(train["batch_size"])
    micro = micro_batch(train, world_size)
    if batch % (micro * world_size):
        raise ValueError(f"train.batch_size {batch} is not a multiple of micro_batch_size {micro} x {world_size} "
                         "processes")
    return micro, batch // (micro * world_size)


# The optimizer the memory plan assumes (training/memory.py): torch's fused AdamW, one kernel over all the shard's
# tensors with no intermediate copies (the foreach implementation's temporaries would add ~16 GiB a GPU at 34B).
# Pinned rather than left to transformers' default (fused only from torch 2.8); it runs on CPU too.
OPTIMIZER = "adamw_torch_fused"


def tf32_flag(train: dict, cuda: bool) -> bool | None:
    """The Trainer's `tf32`: on a GPU, `train.tf32` set either way (off: the fp32 matmuls of Table 2, whatever
    torch's default); on CPU None (TF32 is a GPU setting, and the Trainer refuses it without one)."""
    return bool(train.get("tf32", False)) if cuda else None


def training_arguments(out_dir: str, train: dict, seed: int, threads: int):
    """Trainer arguments from the config's `train` block (steps or epochs, global batch size, lr, dtype, ...);
    CPU-friendly, and the same under `accelerate launch` on several GPUs (WORLD_SIZE processes).

    * Gradients are synchronised on every micro-step (`sync_each_batch`): under FSDP, skipping the sync on
      accumulation steps keeps full unsharded gradients on each rank (~135 GB at 34B).
    * `mixed_precision: bf16` computes in bf16 over fp32 weights and optimizer; `gradient_checkpointing`
      recomputes activations (non-reentrant, which FSDP needs).
    * `save_steps`: a checkpoint every that many steps in out_dir (the last one kept), to resume from."""
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
        bf16=dtype == "bf16" or train.get("mixed_precision") == "bf16",
        fp16=dtype == "fp16",
        gradient_checkpointing=bool(train.get("gradient_checkpointing", False)),
        gradient_checkpointing_kwargs={"use_reentrant": False},
        optim=OPTIMIZER,
        tf32=tf32_flag(train, torch.cuda.is_available()),
        accelerator_config={"gradient_accumulation_kwargs": {"sync_each_batch": True}},
        **({"save_strategy": "steps", "save_steps": int(train["save_steps"]), "save_total_limit": 1}
           if train.get("save_steps") else {"save_strategy": "no"}),
        report_to=[],
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=True,
    )


class LengthSortedSteps:
    """A training sampler: the indices of `sampler` (the Trainer's own random order), each consecutive group of
    `group` (one optimizer step's examples) sorted by length. A step's micro-batches then hold rows of similar
    length and pad less; every step trains on the same examples as before (the loss is normalised over the
    step's tokens), only the sums come in another order."""

    def __init__(self, sampler, lengths: list[int], group: int):
        self.sampler, self.lengths, self.group = sampler, lengths, group

    def __len__(self):
        return len(self.sampler)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        chunk = []
        for i in self.sampler:
            chunk.append(i)
            if len(chunk) == self.group:
                yield from sorted(chunk, key=self.lengths.__getitem__)
                chunk = []
        yield from sorted(chunk, key=self.lengths.__getitem__)


def length_sorted(trainer_class):
    """`trainer_class` whose steps of several micro-batches (gradient accumulation, one process) take their rows
    in length order (`LengthSortedSteps`)."""

    from accelerate.data_loader import SeedableRandomSampler
    from torch.utils.data import RandomSampler

    class LengthSorted(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            accumulation = self.args.gradient_accumulation_steps
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            if sampler is None or accumulation == 1 or self.args.world_size > 1 or not hasattr(dataset, "rows"):
                return sampler
            if self.accelerator.dataloader_config.use_seedable_sampler and type(sampler) is RandomSampler:
                # the sampler accelerate would put in its place (not recognised inside the wrapper): same order
                sampler = SeedableRandomSampler(data_source=dataset, data_seed=self.args.data_seed)
            lengths = [len(r["input_ids"]) for r in dataset.rows]
            return LengthSortedSteps(sampler, lengths, self.args.train_batch_size * accumulation)

    LengthSorted.__name__ = f"LengthSorted{trainer_class.__name__}"
    return LengthSorted


class _ListDataset:
    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        return self.rows[i]


def checkpoint_dir(out_dir: str | Path) -> Path:
    """Where a training job keeps its Trainer checkpoints: beside its output, so a killed or timed-out job that is
    run again (Snakemake removes the incomplete output, not this) resumes from the last one."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.checkpoints"


def _resume_point(train: dict, checkpoints: Path) -> str | None:
    """The last complete checkpoint: the Trainer writes trainer_state.json last, so a checkpoint cut short by the
    kill (weights or optimizer half written) has none and is passed over."""
    if not train.get("save_steps") or not checkpoints.is_dir():
        return None
    complete = []
    for d in checkpoints.glob("checkpoint-*"):
        try:
            step = int(d.name.split("-")[1])
            json.loads((d / "trainer_state.json").read_text())
        except (ValueError, OSError):
            continue
        complete.append((step, d))
    return str(max(complete)[1]) if complete else None


TORCH_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def save_dtype(train: dict):
    import torch

    return getattr(torch, TORCH_DTYPE_NAMES[train.get("save_dtype") or train.get("dtype", "fp32")])


def run_training(trainer_class, model, tokenizer, examples: list[dict], collator, train: dict,
                 out_dir: str | Path, seed: int, threads: int = 1, **summary_extra) -> dict:
    """Train with `trainer_class` (a transformers Trainer), then save model (in `save_dtype`), tokenizer and a
    training summary (loss log, step tag, `summary_extra`) to out_dir atomically: a killed run leaves no model
    behind, only its Trainer checkpoints (with `save_steps`), which the next run resumes from.
    Under `accelerate launch` (WORLD_SIZE > 1, e.g. FSDP) every process trains and the Trainer gathers the
    weights; the main process writes and renames the directory."""
    import os
    import shutil

    from infscale.core.models import non_embedding_params_of

    # the exact count the FLOPs need, taken before any sharding: metrics read it without building the model
    summary_extra = {"non_embedding_params": non_embedding_params_of(model), **summary_extra}
    if train.get("packing"):  # a cache would turn off the packed-sequence mask (and training needs none)
        model.config.use_cache = False
    if train.get("smoke"):  # a smoke run (infscale.smoke): the steps, each rank's peaks, nothing saved
        from infscale.training.smoke_steps import run_smoke_steps

        args = training_arguments(str(Path(out_dir) / "trainer"), train, seed, threads)
        trainer = trainer_class(model=model, args=args, train_dataset=_ListDataset(examples), data_collator=collator)
        return run_smoke_steps(trainer, out_dir)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return _run_distributed(trainer_class, model, tokenizer, examples, collator, train, Path(out_dir), seed,
                                threads, **summary_extra)
    checkpoints = checkpoint_dir(out_dir)
    with atomic_dir(out_dir) as tmp:
        args = training_arguments(str(checkpoints if train.get("save_steps") else Path(tmp) / "trainer"), train,
                                  seed, threads)
        trainer = length_sorted(trainer_class)(model=model, args=args, train_dataset=_ListDataset(examples),
                                               data_collator=collator)
        summary = _train(trainer, len(examples), summary_extra, _resume_point(train, checkpoints))
        shutil.rmtree(Path(tmp) / "trainer", ignore_errors=True)
        model.to(save_dtype(train)).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (Path(tmp) / "training_summary.json").write_text(json.dumps(summary, indent=1))
    shutil.rmtree(checkpoints, ignore_errors=True)
    return summary


def _train(trainer, n_examples: int, summary_extra: dict, resume: str | None = None) -> dict:
    from infscale.core.progress import trainer_callback

    trainer.add_callback(trainer_callback("training"))  # steps done, rate, time left in the job's log
    start = time.time()
    if resume:
        log.info("resuming from %s", resume)
    result = trainer.train(resume_from_checkpoint=resume)
    out = {"train_loss": result.training_loss, "steps": result.global_step, "examples": n_examples,
           "seconds": round(time.time() - start, 1), "step_tag": STEP_TAG, **summary_extra,
           "log": [h for h in trainer.state.log_history if "loss" in h]}
    if resume:
        out["resumed_from"] = Path(resume).name
    return out


def cast_state_dict(state: dict, dtype) -> dict:
    """Cast the floating tensors of `state` to `dtype` in place, one at a time: each full-precision tensor goes as
    soon as its copy exists, so rank 0 holds the gathered model once (34B in fp32: 133 GB), not in both dtypes."""
    for key in list(state):
        tensor = state[key]
        if tensor.is_floating_point() and tensor.dtype != dtype:
            state[key] = tensor.to(dtype)
        del tensor
    return state


def _run_distributed(trainer_class, model, tokenizer, examples, collator, train, out_dir: Path, seed, threads,
                     **summary_extra) -> dict:
    """Several processes: a fixed temp directory beside out_dir that every rank agrees on; the full state dict
    is gathered (FSDP FULL_STATE_DICT, on rank 0's CPU), cast to `save_dtype` tensor by tensor and written by the
    main process only, which then renames into place."""
    import os
    import shutil

    tmp = out_dir.parent / f".{out_dir.name}.distributed.tmp"
    checkpoints = checkpoint_dir(out_dir)
    args = training_arguments(str(checkpoints if train.get("save_steps") else tmp / "trainer"), train, seed, threads)
    trainer = trainer_class(model=model, args=args, train_dataset=_ListDataset(examples), data_collator=collator)
    summary = _train(trainer, len(examples), summary_extra, _resume_point(train, checkpoints))
    state = trainer.accelerator.get_state_dict(trainer.model)  # every rank takes part in the gather
    if trainer.is_world_process_zero():
        cast_state_dict(state, save_dtype(train))
        trainer.accelerator.unwrap_model(trainer.model).save_pretrained(tmp, state_dict=state)
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "training_summary.json").write_text(json.dumps(summary, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
        shutil.rmtree(checkpoints, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return summary


def train_policy(rows: list[dict], tokenizer, model, train: dict, out_dir: str | Path, seed: int,
                 threads: int = 1) -> dict:
    """Train `model` on rows with `question` and `solution`; save model + tokenizer atomically to out_dir."""
    from transformers import Trainer

    from infscale.core.models import leading_special_ids

    max_length, prefix = int(train.get("max_length", 256)), leading_special_ids(tokenizer)
    examples = encode_sft_examples(tokenizer, rows, max_length, prefix)
    return run_training(Trainer, model, tokenizer, examples, collator_for(train, tokenizer.pad_token_id), train,
                        out_dir, seed, threads)
