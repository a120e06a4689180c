"""Where train_policy's time goes, on the default study's data and pythia-m's architecture, one thread.

    python benchmarks/training_time.py [--steps 60] [--repeats 3] [--model pythia-m] [--calib SECONDS] [--out DIR]

Measures, in one process:
  1. encoding the 20,000 SFT rows: one tokenizer call per text (before) against `encode_sft_examples`'s one
     batched call of the distinct texts (now), the fastest of two interleaved rounds, and that both give the
     same ids;
  2. --steps Trainer steps (the default's batch, lr and warm-up) as one batch of 32 (before) and as two
     micro-batches of 16 sorted by length (now: `sft.LengthSortedSteps`, config.yaml's micro_batch_size), each
     timed by wrapping the Trainer's own calls: forward + loss (`compute_loss`), backward (the rest of
     `training_step`), and everything else of the run (data loading and collation, optimizer and scheduler,
     logging, callbacks, saving); with the padded tokens each read and the losses each logged;
  3. padding: the share of the tokens in the padded batches that are padding (batches as the Trainer draws
     them: 32 random rows, padded to the longest).
Writes DIR/training_time.json and .md (default benchmarks/results); prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--model", default="pythia-m")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved runs of each; the fastest is kept")
    ap.add_argument("--calib", default=None, help="seconds of calib.py measured in the same session")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    import torch
    from transformers import Trainer

    from infscale.core import toytask
    from infscale.core.data import training_texts
    from infscale.core.models import build_causal_lm
    from infscale.training import sft
    from infscale.training.tokenizer import load_tokenizer, train_tokenizer

    torch.set_num_threads(1)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    toy = config["datasets"]["toy"]["toy"]
    rows = toytask.make_splits(toy["n_train"], toy["n_prm"], toy["n_test"], toy["seed"], levels=toy["levels"],
                               carry_rate=toy["carry_rate"], order=toy["order"], carry_free=toy["carry_free"])["train"]
    model_cfg = config["models"][args.model]
    with tempfile.TemporaryDirectory(prefix="infscale-training-time-") as tmp:
        train_tokenizer(training_texts(rows), Path(tmp) / "tokenizer", vocab_size=config["tokenizer"]["vocab_size"])
        tok = load_tokenizer(Path(tmp) / "tokenizer")
        encode = {}
        for _ in range(2):
            start = time.perf_counter()
            one = [sft.encode_sft_example(tok, r["question"], r["solution"], 256, []) for r in rows]
            encode["one call a text"] = min(encode.get("one call a text", 1e9), time.perf_counter() - start)
            start = time.perf_counter()
            batched = sft.encode_sft_examples(tok, rows, 256, [])
            encode["batched"] = min(encode.get("batched", 1e9), time.perf_counter() - start)
        same_ids = one == batched

        runs = {}
        rounds = [(label, micro) for _ in range(args.repeats)
                  for label, micro in (("one batch of 32 (before)", None),
                                       ("two micro-batches of 16, length-sorted (now)", 16))]
        # interleaved: a busy spell on the shared machine hits both alike
        for round_, (label, micro) in enumerate(rounds):
            clock = {"forward": 0.0, "step": 0.0, "padded": 0}

            class Timed(Trainer):
                def compute_loss(self, *a, clock=clock, **k):
                    start = time.perf_counter()
                    out = super().compute_loss(*a, **k)
                    clock["forward"] += time.perf_counter() - start
                    return out

                def training_step(self, *a, clock=clock, **k):
                    start = time.perf_counter()
                    out = super().training_step(*a, **k)
                    clock["step"] += time.perf_counter() - start
                    return out

            class Counting(sft.PadCollator):
                def __call__(self, batch, clock=clock):
                    out = super().__call__(batch)
                    clock["padded"] += out["input_ids"].numel()
                    return out

            train = {**model_cfg["train"], "steps": args.steps}
            train.pop("micro_batch_size", None)
            if micro:
                train["micro_batch_size"] = micro
            model = build_causal_lm(model_cfg["arch"], tok, 0)
            start = time.perf_counter()
            summary = sft.run_training(Timed, model, tok, batched, Counting(tok.pad_token_id), train,
                                       Path(tmp) / f"model-{round_}", seed=0, threads=1)
            total = time.perf_counter() - start
            if label in runs and runs[label]["run_s"] <= total:
                continue
            runs[label] = {"run_s": round(total, 1), "padded_tokens": clock["padded"],
                           "losses": [h["loss"] for h in summary["log"]], "parts_s": {
                               "forward + loss": round(clock["forward"], 1),
                               "backward": round(clock["step"] - clock["forward"], 1),
                               "rest of the run (data, optimizer, Trainer, saving)": round(total - clock["step"], 1)}}
    lengths = [len(e["input_ids"]) for e in batched]
    random.seed(0)
    real = padded = 0
    for _ in range(2000):
        batch = random.sample(lengths, int(train["batch_size"]))
        real, padded = real + sum(batch), padded + len(batch) * max(batch)
    before, now = runs.values()
    result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, load average "
                         f"{os.getloadavg()[0]:.1f}",
              "command": "python benchmarks/training_time.py " + " ".join(sys.argv[1:]), "calib_s": args.calib,
              "model": args.model, "arch": model_cfg["arch"], "steps": args.steps, "rows": len(rows),
              "encode_s": {k: round(v, 2) for k, v in encode.items()}, "same_ids": same_ids, "runs": runs,
              "max_loss_difference": max(abs(a - b) for a, b in zip(before["losses"], now["losses"])),
              "padding_share_batches_of_32": round(1 - real / padded, 3),
              "mean_tokens": round(sum(lengths) / len(lengths), 1)}
    lines = [f"# Where train_policy's time goes ({result['machine']})", "",
             f"Command: `{result['command']}`; calib {args.calib} s (`calib.py`, the same session). {args.model} "
             f"({model_cfg['arch']}), config.yaml's data ({len(rows)} rows), batch 32, lr and warm-up, one thread.",
             "", f"Encoding the rows: {encode['one call a text']:.2f} s one tokenizer call a text (before), "
             f"{encode['batched']:.2f} s batched (`sft.encode_sft_examples`, now); same ids: {same_ids}.", "",
             f"{args.steps} Trainer steps, the fastest of {args.repeats} interleaved runs each; every step trains on "
             f"the same 32 rows either way (the losses logged differ "
             f"by at most {result['max_loss_difference']:.1e}):", "",
             "| run | s | forward + loss | backward | rest (data, optimizer, Trainer, saving) | padded tokens |",
             "|---|---|---|---|---|---|"]
    for label, r in runs.items():
        p = list(r["parts_s"].values())
        lines.append(f"| {label} | {r['run_s']} | {p[0]} | {p[1]} | {p[2]} | {r['padded_tokens']} |")
    lines += ["", f"Padding: {result['padding_share_batches_of_32']:.0%} of the tokens in batches of 32 rows "
              f"({result['mean_tokens']} tokens a row on average, each batch padded to its longest row)."]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "training_time.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "training_time.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
