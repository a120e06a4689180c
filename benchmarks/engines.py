"""Generation engines side by side on the default study's three policies: tokens/s, the arithmetic limit, and
what tree search reads per depth.

    python benchmarks/engines.py [--steps 300] [--problems 40] [--n 32] [--repeats 3] [--workdir DIR] [--out DIR]
                                 [--calib SECONDS]

Everything is built here, nothing is downloaded: config.yaml's toy data, tokenizer and the three policies'
architectures (pythia-xs, -s, -m), trained for --steps SFT steps (config.yaml trains 1,200; throughput does not
depend on the weights, only the lengths of the samples do). --workdir keeps the models for the next run.
One thread (config.yaml's `threads: 1`).

Measures, per policy, on the first --problems test questions, sampling n = --n at T = 1, at most 128 new tokens,
seed 0 (the default study's largest sampling budget):
  1. generated tokens/s of each engine: today's path (`model.generate`, batch 64), the cached decoder
     (search/kv_decode.py) at batch 64 and 256, and vLLM where it imports (docs/vllm.md). The variants run
     interleaved, --repeats rounds, and each keeps its fastest round (the machine is shared);
  2. the arithmetic limit: the model's FLOPs per generated token (matrix multiplies of the layers and the head,
     attention over the mean context) against the rate torch multiplies matrices of the model's shapes at 256 rows
     on this machine, measured here;
  3. whether a rerun with the same seed gives the same candidates, and how many candidates equal today's path's.
Then REBASE (width 16, the default's step limits) on pythia-m: the tokens the cached decoder reads per depth with
its prefix cache and without it (a full re-read of prompt and path).
Writes DIR/engines.json and DIR/engines.md (default benchmarks/results); prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ("pythia-xs", "pythia-s", "pythia-m")
MAX_NEW_TOKENS = 128
VLLM_OPTIONS = {"dtype": "float32", "kv_cache_gib": 1.0, "block_size": 32}


def build_models(work: Path, steps: int) -> tuple[dict[str, Path], list[dict]]:
    """({policy: dir}, test rows) from config.yaml's toy data and architectures; models in `work` are reused."""
    from infscale.core import toytask
    from infscale.core.data import training_texts
    from infscale.core.models import build_causal_lm
    from infscale.training.sft import train_policy
    from infscale.training.tokenizer import load_tokenizer, train_tokenizer

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    toy = config["datasets"]["toy"]["toy"]
    splits = toytask.make_splits(toy["n_train"], toy["n_prm"], toy["n_test"], toy["seed"], levels=toy["levels"],
                                 carry_rate=toy["carry_rate"], order=toy["order"], carry_free=toy["carry_free"])
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "tokenizer" / "tokenizer.json").exists():
        train_tokenizer(training_texts(splits["train"]), work / "tokenizer",
                        vocab_size=config["tokenizer"]["vocab_size"])
    tok = load_tokenizer(work / "tokenizer")
    dirs = {}
    for name in POLICIES:
        model = config["models"][name]
        dirs[name] = work / f"{name}-{steps}"
        if not (dirs[name] / "config.json").exists():
            train_policy(splits["train"], tok, build_causal_lm(model["arch"], tok, 0),
                         {**model["train"], "steps": steps}, dirs[name], seed=0, threads=1)
    return dirs, splits["test"]


def variants(vllm: bool) -> list[tuple[str, str, dict]]:
    """(label, engine name, options) of every engine measured."""
    out = [("transformers, model.generate (today), batch 64", "transformers",
            {"decoder": "generate", "batch_size": 64}),
           ("transformers, cached decoder, batch 64", "transformers", {"batch_size": 64}),
           ("transformers, cached decoder, batch 256", "transformers", {"batch_size": 256})]
    if vllm:
        out.append(("vLLM (CPU)", "vllm", VLLM_OPTIONS))
    return out


def make(name: str, path: Path, options: dict):
    from infscale.search.engines import TransformersEngine, make_engine

    if name == "transformers":
        return TransformersEngine(str(path), threads=1, **options)
    return make_engine(name, str(path), **options)


def measure_policy(path: Path, rows: list[dict], n: int, repeats: int, vllm: bool) -> dict:
    from infscale.core.stepformat import format_prompt
    from infscale.search.engine_base import SamplingParams

    prompts = [format_prompt(r["question"]) for r in rows]
    sp = SamplingParams(n=n, temperature=1.0, top_p=1.0, max_new_tokens=MAX_NEW_TOKENS, seed=0)
    engines, refused = {}, {}
    for label, name, options in variants(vllm):
        try:
            engines[label] = make(name, path, options)
        except ValueError as e:  # vLLM's CPU attention lacks some head sizes (16, 40)
            refused[label] = str(e).split(": ", 1)[-1]
    for engine in engines.values():
        engine.generate(prompts[:2], SamplingParams(n=4, max_new_tokens=16, seed=1))  # warm-up
    best, candidates = {}, {}
    for _ in range(repeats):  # interleaved rounds: a busy spell on the shared machine hits every engine alike
        for label, engine in engines.items():
            start = time.perf_counter()
            gens = engine.generate(prompts, sp)
            seconds = time.perf_counter() - start
            texts = [c.text for g in gens for c in g.completions]
            prompt_tokens = sum(g.prompt_tokens for g in gens) / len(gens)
            tokens = sum(c.tokens for g in gens for c in g.completions)
            if label in candidates and candidates[label][0] != texts:
                candidates[label] = (texts, False)
            candidates.setdefault(label, (texts, True))
            if label not in best or seconds < best[label]["seconds"]:
                best[label] = {"seconds": round(seconds, 2), "tokens": tokens, "tokens_per_s": round(tokens / seconds),
                               "mean_prompt_tokens": round(prompt_tokens, 1)}
    today = candidates[variants(False)[0][0]][0]
    for label, (texts, same) in candidates.items():
        best[label]["same_candidates_on_rerun"] = same
        best[label]["candidates_equal_to_today"] = sum(a == b for a, b in zip(texts, today))
        best[label]["candidates"] = len(texts)
    for engine in engines.values():
        engine.close()
    return {**best, **{label: {"refused": why} for label, why in refused.items()}}


def arithmetic_limit(path: Path, mean_context: float, rows: int = 256, seconds: float = 1.0) -> dict:
    """FLOPs per generated token and the tokens/s they allow at the measured matrix-multiply rate."""
    import torch
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path)
    d, layers, vocab, inner = cfg.hidden_size, cfg.num_hidden_layers, cfg.vocab_size, cfg.intermediate_size
    shapes = [(d, 3 * d), (d, d), (d, inner), (inner, d)] * layers + [(d, vocab)]
    flops = sum(2 * k * m for k, m in shapes) + layers * 4 * d * mean_context  # + attention: q.k and p.v
    torch.manual_seed(0)
    pairs = [(torch.randn(rows, k), torch.randn(k, m)) for k, m in shapes]
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a, b in pairs:
            torch.mm(a, b)
        done += 1
    rate = done * rows * sum(2 * k * m for k, m in shapes) / (time.perf_counter() - start)
    return {"flops_per_token": round(flops), "matmul_gflops": round(rate / 1e9, 1),
            "limit_tokens_per_s": round(rate / flops)}


def rebase_per_depth(path: Path, rows: list[dict], width: int, repeats: int) -> dict:
    """Tokens the cached decoder reads at each REBASE depth, with its prefix cache and with none; wall time the
    fastest of `repeats` interleaved runs each."""
    from infscale.search.engines import TransformersEngine
    from infscale.search.policy_likelihood import PolicyLikelihoodVerifier
    from infscale.search.rebase import run_rebase

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    params = {k: v for k, v in config["strategies"]["rebase"].items() if k != "budgets"}
    prm = PolicyLikelihoodVerifier(str(path), batch_size=64, threads=1)
    out = {}
    engines = {label: TransformersEngine(str(path), batch_size=64, threads=1, prefix_cache_mib=mib)
               for label, mib in (("prefix cache", 256), ("full re-read", 0))}
    for _ in range(repeats):
        for label, engine in engines.items():
            depths, generate = [], engine.generate

            def counted(prompts, sp, generate=generate, engine=engine, depths=depths):
                before = dict(engine.stats)
                gens = generate(prompts, sp)
                delta = {k: engine.stats[k] - before[k] for k in before}
                depths.append({"rows": len(prompts), "prompt_tokens": delta["prompt_tokens"],
                               "prompt_tokens_read": delta["prefill_tokens"], "generated_tokens_read":
                               delta["decode_tokens"], "tokens_read": delta["prefill_tokens"] + delta["decode_tokens"]})
                return gens

            engine.generate = counted
            start = time.perf_counter()
            trees = run_rebase(engine, prm, rows, "toy", width, params, seed=0)
            seconds = time.perf_counter() - start
            del engine.generate
            candidates = [c["text"] for t in trees for c in t["candidates"]]
            if label in out:
                assert out[label]["candidates"] == candidates and out[label]["depths"] == depths, "rerun differs"
                out[label]["seconds"] = min(out[label]["seconds"], round(seconds, 1))
            else:
                out[label] = {"seconds": round(seconds, 1), "depths": depths, "candidates": candidates}
    for engine in engines.values():
        engine.close()
    same = out["prefix cache"]["candidates"] == out["full re-read"]["candidates"]
    for v in out.values():
        v["candidates"] = len(v["candidates"])
    out["identical_candidates"] = same
    out["repeats"] = repeats
    return out


def vllm_imports() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def markdown(result: dict) -> str:
    lines = [f"# Engines on the default study's policies ({result['machine']})", "",
             f"Command: `{result['command']}`; calib {result['calib_s']} s (`calib.py`, the same session). "
             f"Policies: config.yaml's architectures, {result['steps']} SFT steps; "
             f"{result['problems']} test problems, sampling n = {result['n']} at T = 1, at most {MAX_NEW_TOKENS} new "
             f"tokens, seed 0, one thread; the fastest of {result['repeats']} interleaved rounds. vLLM: "
             f"{result['vllm']}.", ""]
    labels = list(next(iter(result["policies"].values()))["engines"])
    lines += ["| policy | engine | s | tokens | tokens/s | x today | same on rerun | candidates equal to today's |",
              "|---|---|---|---|---|---|---|---|"]
    for name, p in result["policies"].items():
        today = p["engines"][labels[0]]["tokens_per_s"]
        for label, r in p["engines"].items():
            if "refused" in r:
                lines.append(f"| {name} | {label} | {r['refused']} | | | | | |")
                continue
            lines.append(f"| {name} | {label} | {r['seconds']} | {r['tokens']} | {r['tokens_per_s']} | "
                         f"{r['tokens_per_s'] / today:.1f} | {'yes' if r['same_candidates_on_rerun'] else 'NO'} | "
                         f"{r['candidates_equal_to_today']} of {r['candidates']} |")
        a = p["limit"]
        lines.append(f"| {name} | arithmetic limit: {a['flops_per_token'] / 1e6:.2f} MFLOP a token at "
                     f"{a['matmul_gflops']} GFLOP/s | | | {a['limit_tokens_per_s']} | "
                     f"{a['limit_tokens_per_s'] / today:.1f} | | |")
    r = result["rebase"]
    if result.get("rebase_command"):
        lines += ["", f"REBASE measured again: `{result['rebase_command']}`, calib {result['rebase_calib_s']} s."]
    lines += ["", f"REBASE on pythia-m, width {result['rebase_width']}, config.yaml's step limits, seed 0: tokens the "
              "cached decoder reads per depth (one engine call a depth). With the prefix cache a node's prompt and "
              "path come from the cache of the step it extends; without it they are read again.", "",
              "| depth | rows | prompt + path tokens | read with prefix cache (prompt + generated) | "
              "read without (prompt + generated) |", "|---|---|---|---|---|"]
    for d, (c, f) in enumerate(zip(r["prefix cache"]["depths"], r["full re-read"]["depths"]), 1):
        lines.append(f"| {d} | {c['rows']} | {c['prompt_tokens']} | {c['tokens_read']} "
                     f"({c['prompt_tokens_read']} + {c['generated_tokens_read']}) | {f['tokens_read']} "
                     f"({f['prompt_tokens_read']} + {f['generated_tokens_read']}) |")
    lines += ["", f"Wall time {r['prefix cache']['seconds']} s with the prefix cache, {r['full re-read']['seconds']} s "
              f"without, the fastest of {r['repeats']} interleaved runs each, the same trees every run "
              f"(REBASE's verifier calls included); candidates "
              f"{'identical' if r['identical_candidates'] else 'NOT identical'} "
              f"({r['prefix cache']['candidates']} and {r['full re-read']['candidates']})."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3, help="interleaved timed rounds; each engine keeps its fastest")
    ap.add_argument("--rebase-width", type=int, default=16)
    ap.add_argument("--policies", nargs="+", default=list(POLICIES))
    ap.add_argument("--calib", default=None, help="seconds of /work/shared/tools/calib.py measured in the same "
                    "session (machine speed), recorded with the timings")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--rebase-only", action="store_true", help="keep the policies' rows of DIR/engines.json (an "
                    "earlier run's) and measure the REBASE part again")
    ap.add_argument("--workdir", default=None, help="where the models are built (default: a temporary dir)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    vllm = vllm_imports()
    with tempfile.TemporaryDirectory(prefix="infscale-engines-") as tmp:
        dirs, test = build_models(Path(args.workdir or tmp), args.steps)
        rows = test[: args.problems]
        policies = {}
        earlier = json.loads((Path(args.out) / "engines.json").read_text()) if args.rebase_only else None
        for name in [] if earlier else args.policies:
            engines = measure_policy(dirs[name], rows, args.n, args.repeats, vllm)
            today = next(iter(engines.values()))
            # attention reads the prompt and, on average, half of a sample's tokens
            mean_context = today["mean_prompt_tokens"] + today["tokens"] / (len(rows) * args.n) / 2
            limit = arithmetic_limit(dirs[name], mean_context)
            policies[name] = {"engines": engines, "limit": limit}
            print(name, json.dumps(policies[name]), flush=True)
        rebase = rebase_per_depth(dirs["pythia-m"], rows, args.rebase_width, args.repeats)
        load = os.getloadavg()[0]
    if earlier:
        earlier.update(rebase_width=args.rebase_width, rebase=rebase, rebase_command="python benchmarks/engines.py "
                       + " ".join(sys.argv[1:]), rebase_calib_s=args.calib)
        result = earlier
    else:
        result = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, load "
                             f"average {load:.1f} at the end",
                  "command": "python benchmarks/engines.py " + " ".join(sys.argv[1:]), "calib_s": args.calib,
                  "steps": args.steps, "problems": len(rows), "n": args.n, "repeats": args.repeats,
                  "vllm": "measured" if vllm else "not installed in this environment (docs/vllm.md)",
                  "policies": policies, "rebase_width": args.rebase_width, "rebase": rebase}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "engines.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "engines.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
