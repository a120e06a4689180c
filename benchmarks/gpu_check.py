"""GPU check: what the pipeline runs on a GPU, at toy size, in a few minutes, needing only torch, transformers and
accelerate (no vLLM, no Snakemake, no network; the package is read from this checkout's src/).

    python benchmarks/gpu_check.py --out gpu_check.json [--device cuda|cpu] [--workdir DIR]

Builds tiny random checkpoints in released layouts (infscale.core.tiny_checkpoints), then, timing each:
  1. policies of three architectures (Qwen2, Llama-3.1, Mistral tokenizers and chat templates) generate through the
     transformers engine, saved and run in bf16 on a GPU (fp32 on CPU);
  2. every verifier family (math_shepherd, qwen_prm, rlhflow, skywork, token_classification) scores the same
     candidates in bf16 on a GPU: the scores are finite probabilities, agree with the same family run in fp32 on
     the CPU (max abs difference reported), and prefix sharing (siblings read over a shared cache) agrees with
     reading every text whole;
  3. a few SFT steps through accelerate (training/sft.py's Trainer; bf16 mixed precision on a GPU), then the
     trained policy generates.
Writes --out (JSON) and the same name with .md; exits 1 if a check failed. `--device cpu` runs it all on the CPU
(a fast test does, so it is known to work before a GPU sees it).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))  # this checkout's package: nothing to install but torch/transformers/accelerate

QUESTIONS = ["Janet has 3 apples and buys 4 more. How many apples does she have?",
             "Compute 12 - 5 + 9.",
             "Let x be the number of pens; 2x + 6 = 20. Find x.",
             "What is 7 times 8?"]
SOLUTIONS = ["She has 3 + 4 = 7 apples.\n\nTherefore the final answer is $\\boxed{7}$.",
             "12 - 5 = 7.\n\n7 + 9 = 16.\n\nTherefore the final answer is $\\boxed{16}$.",
             "2x = 14, so x = 7.\n\nTherefore the final answer is $\\boxed{7}$.",
             "7 times 8 is 56.\n\nTherefore the final answer is $\\boxed{56}$."]
SHARED_PATH = "First we read the problem carefully and write down every quantity it gives us."
FAMILIES = ("math_shepherd", "qwen_prm", "rlhflow", "skywork", "token_classification")
POLICIES = ("qwen2", "llama", "mistral")
# the pipeline's other dependencies, none of which this check may import (scipy is left out: transformers' Trainer
# imports it where it is installed)
NOT_NEEDED = ("vllm", "snakemake", "pandas", "matplotlib", "jsonschema", "math_verify", "infscale.reporting")


def instruct_steps(text: str) -> list[str]:
    return [s.strip() for s in text.split("\n\n") if s.strip()]


class Report:
    def __init__(self):
        self.checks: list[dict] = []

    def run(self, name: str, fn, **context):
        start = time.perf_counter()
        try:
            details, ok = fn(), True
        except Exception:  # a failed check is reported, the others still run
            details, ok = {"error": traceback.format_exc(limit=4)}, False
        row = {"check": name, "ok": ok, "seconds": round(time.perf_counter() - start, 3), **context, **details}
        self.checks.append(row)
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {row['seconds']} s", flush=True)
        return row


def environment(device: str) -> dict:
    import accelerate
    import torch
    import transformers

    env = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
           "accelerate": accelerate.__version__, "device": device, "cuda_available": torch.cuda.is_available()}
    if device.startswith("cuda"):
        env.update(gpu=torch.cuda.get_device_name(0), bf16_supported=torch.cuda.is_bf16_supported(),
                   gpu_memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1))
    return env


def chat_prompts(tokenizer) -> list[str]:
    """Each question as the policy's chat template writes it, generation prompt open; the BOS the tokenizer adds
    itself is left to the engine (leading_special_ids), not written twice."""
    prompts = []
    for q in QUESTIONS:
        text = tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True)
        bos = tokenizer.bos_token
        prompts.append(text[len(bos):] if bos and text.startswith(bos) else text)
    return prompts


def generate(path: Path, device: str) -> tuple[dict, list[str]]:
    from infscale.search.engine_base import SamplingParams
    from infscale.search.engines import TransformersEngine

    engine = TransformersEngine(str(path), batch_size=16, device=device)
    params = SamplingParams(n=4, temperature=1.0, max_new_tokens=48, stop=("\n\n",), seed=0)
    start = time.perf_counter()
    out = engine.generate(chat_prompts(engine.tokenizer), params)
    seconds = time.perf_counter() - start
    generated = sum(c.tokens for g in out for c in g.completions)
    dtype = str(next(engine.model.parameters()).dtype)
    engine.close()
    texts = [c.text for g in out for c in g.completions]
    return {"model_dtype": dtype, "candidates": len(texts), "generated_tokens": generated,
            "tokens_per_s": round(generated / seconds, 1)}, texts


def verifier(family: str, path: Path, device: str, dtype):
    from infscale.search.verifiers import load_verifier

    return load_verifier(str(path), {"kind": "prm", "family": family}, device=device, dtype=dtype,
                         split_steps=instruct_steps, batch_size=16)


def score_family(family: str, path: Path, device: str, candidates: list[tuple[str, str]]) -> dict:
    """Scores on `device` (bf16 on a GPU) against the same family in fp32 on the CPU, and shared-prefix reads
    against whole reads."""
    import math

    import torch

    questions, texts = [q for q, _ in candidates], [t for _, t in candidates]
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    prm = verifier(family, path, device, dtype)
    start = time.perf_counter()
    scores, tokens = prm.score(questions, texts)
    seconds = time.perf_counter() - start
    flat = [x for s in scores for x in s]
    if not flat or not all(math.isfinite(x) and 0.0 <= x <= 1.0 for x in flat):
        raise AssertionError(f"{family}: step scores not all finite probabilities: {flat[:8]}")
    if any(len(s) != len(instruct_steps(t)) for s, t in zip(scores, texts)):
        raise AssertionError(f"{family}: a candidate's score count differs from its step count")
    row = {"family": family, "dtype": str(dtype), "candidates": len(texts), "steps_scored": len(flat),
           "tokens_read": sum(tokens), "score_seconds": round(seconds, 3)}
    if device != "cpu":  # on the CPU this would be the same run twice
        reference, ref_tokens = verifier(family, path, "cpu", torch.float32).score(questions, texts)
        if ref_tokens != tokens:
            raise AssertionError(f"{family}: token counts differ from the fp32 CPU run")
        row["max_abs_diff_vs_fp32_cpu"] = max(abs(a - b) for s, r in zip(scores, reference) for a, b in zip(s, r))
    if hasattr(prm, "min_shared"):
        prm.min_shared = 10**9  # every text read whole
        whole, _ = prm.score(questions, texts)
        row["max_abs_diff_shared_vs_whole"] = max(abs(a - b) for s, w in zip(scores, whole) for a, b in zip(s, w))
    tolerance = 0.1 if dtype == torch.bfloat16 else 1e-4
    worst = max(row.get("max_abs_diff_vs_fp32_cpu", 0.0), row.get("max_abs_diff_shared_vs_whole", 0.0))
    if worst > tolerance:
        raise AssertionError(f"{family}: scores differ by {worst} (tolerance {tolerance})")
    return row


def sft(path: Path, out: Path, device: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from infscale.training.sft import train_policy

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # fp32 weights, bf16 autocast on GPU
    rows = [{"question": q, "solution": s} for q, s in zip(QUESTIONS, SOLUTIONS)] * 4
    train = {"steps": 4, "batch_size": 4, "lr": 1e-3, "max_length": 128}
    if device.startswith("cuda"):
        train["mixed_precision"] = "bf16"
        torch.cuda.reset_peak_memory_stats()
    summary = train_policy(rows, tokenizer, model, train, out, seed=0, threads=1)
    row = {"steps": summary["steps"], "train_loss": round(summary["train_loss"], 4),
           "train_seconds": summary["seconds"], "mixed_precision": train.get("mixed_precision", "no")}
    if device.startswith("cuda"):
        row["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if summary["steps"] != train["steps"]:
        raise AssertionError(f"trained {summary['steps']} steps, asked for {train['steps']}")
    return row


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = ["# GPU check (benchmarks/gpu_check.py)", "",
             f"device {env['device']}" + (f" ({env['gpu']}, {env['gpu_memory_gib']} GiB)" if "gpu" in env else "")
             + f"; torch {env['torch']}, transformers {env['transformers']}, accelerate {env['accelerate']}",
             f"total {report['total_seconds']} s; all ok: {report['ok']}; modules not needed yet imported: "
             f"{report['not_needed_imported'] or 'none'}", "",
             "| check | ok | seconds | details |", "|---|---|---|---|"]
    for c in report["checks"]:
        details = {k: v for k, v in c.items() if k not in ("check", "ok", "seconds", "error")}
        text = ", ".join(f"{k} {v}" for k, v in details.items())
        if "error" in c:
            text += " ERROR " + c["error"].strip().splitlines()[-1]
        lines.append(f"| {c['check']} | {'yes' if c['ok'] else 'NO'} | {c['seconds']} | {text} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="report JSON (a .md beside it)")
    parser.add_argument("--device", default=None, help="cuda (default where one is visible) or cpu")
    parser.add_argument("--workdir", default=None, help="where the tiny checkpoints go (default a temp dir)")
    args = parser.parse_args(argv)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the Trainer too: no GPU it could pick
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no GPU is visible")
    torch.set_num_threads(min(4, os.cpu_count() or 1))
    start = time.perf_counter()
    report, work = Report(), Path(args.workdir or tempfile.mkdtemp(prefix="gpu_check-"))
    from infscale.core.tiny_checkpoints import build_tiny_policy, build_tiny_prm

    dtype = "bfloat16" if device.startswith("cuda") else "float32"
    policies, prms = {}, {}

    def build():
        for arch in POLICIES:
            policies[arch] = build_tiny_policy(arch, work / "policy" / arch, dtype=dtype)
        for family in FAMILIES:
            prms[family] = build_tiny_prm(family, work / "prm" / family)
        return {"workdir": str(work)}

    report.run("build tiny checkpoints", build)
    generated: dict[str, list[str]] = {}
    for arch in POLICIES:
        def gen(arch=arch):
            details, texts = generate(policies[arch], device)
            generated[arch] = texts
            return details

        report.run(f"generate: {arch} policy, transformers engine", gen, policy=arch)
    # the candidates every verifier scores: written solutions (several steps, a shared path among siblings) and
    # what the policies generated (one step or none each: random tiny models)
    candidates = [(q, s) for q, s in zip(QUESTIONS, SOLUTIONS)]
    candidates += [(QUESTIONS[0], f"{SHARED_PATH}\n\n{tail}") for tail in ("So 7.", "So 8.", "3 + 4 = 7.")]
    for texts in generated.values():
        candidates += [(QUESTIONS[i // 4 % len(QUESTIONS)], t or "No answer.") for i, t in enumerate(texts[:8])]
    for family in FAMILIES:
        report.run(f"score: {family}", lambda family=family: score_family(family, prms[family], device, candidates))
    report.run("sft: 4 steps through accelerate (Trainer), then generate",
               lambda: {**sft(policies["qwen2"], work / "sft" / "qwen2", device),
                        **generate(work / "sft" / "qwen2", device)[0]})
    result = {"environment": environment(device), "checks": report.checks,
              "total_seconds": round(time.perf_counter() - start, 1), "ok": all(c["ok"] for c in report.checks),
              "not_needed_imported": sorted(m for m in NOT_NEEDED if m in sys.modules)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
