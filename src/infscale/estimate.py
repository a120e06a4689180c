"""GPU hours of a study before running it, from its config and the FLOPs accounting (Kaplan et al.: training
costs 6N FLOPs a token, 8N with gradient checkpointing; inference 2N a token read or generated; attention terms
left out).

    python -m infscale.estimate config/paper.yaml [--gpu-tflops 989] [--fp32-tflops 67]

What it counts (docs/design.md, "Compute estimate"):
* training runs at the peak of its precision: fp32 weights without mixed precision at the GPU's FP32 peak (no
  TF32: the Trainer leaves it off), bf16 or bf16 mixed precision at the BF16 peak; CPU offload of the FSDP shards
  costs a further share (OFFLOAD_SPEED);
* a job holds all its GPUs for its whole wall time: a tree search's policy (tensor parallel over its GPUs) and PRM
  (one GPU) take turns, so the job's GPU hours are its GPUs x (policy time + PRM time); a sampling job holds its
  GPUs while the policy decodes, a score job while the PRM reads;
* the PRM reads the prompt with every call: once per candidate after sampling, once per scored node in a tree
  search, besides the path so far.
Assumptions that remain: the constants below (rows and mean tokens of the released data sets, prompt and solution
lengths, steps a solution, shares of peak); no attention FLOPs; no time lost to queueing, start-up, model loading
or checkpointing; prefix caching of the policy's prompts is taken as free. The result is an order of magnitude for
planning an allocation, not a measurement."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from infscale.core import config as cfg
from infscale.core.validation import validate_config
from infscale.search.placement import plan_devices

# Rows and mean tokens (prompt + solution) of the training sets; problems and mean tokens a solution at test time.
TRAIN_DATA = {"metamath": (395_000, 250), "metamath-gsm8k": (240_000, 200), "math-shepherd": (445_000, 300)}
TEST_PROBLEMS = {"math500": 500, "gsm8k": 1319}
SOLUTION_TOKENS = {"math500": 300, "gsm8k": 180}  # Table 4: Llemma-7B greedy 3.92e12 / 2.3e12 FLOPs a question
PROMPT_TOKENS = {"math500": 100, "gsm8k": 80}  # mean question length (Llama tokenizer), re-read by every PRM call
SOLUTION_STEPS = {"math500": 8, "gsm8k": 5}  # steps a solution: a tree search scores one node per step and path
STEP_TOKENS = 50  # MCTS: one expansion generates about one step
TREE_OVERHEAD = 1.2  # REBASE generates ~1.2x the tokens of sampling at equal n (Table 4: 148.0 / 125.4)
UTILISATION = {"train": 0.35, "generate": 0.15, "score": 0.4}  # share of the precision's peak reached
OFFLOAD_SPEED = 0.7  # FSDP with its shards in CPU memory: the optimizer step on CPU and the transfers
H100_BF16_TFLOPS = 989.0  # dense
H100_FP32_TFLOPS = 67.0  # non-tensor-core FP32


@dataclass
class Stage:
    """One stage: its jobs, its FLOPs, and the parts that take GPU time: (FLOPs, share of peak, GPUs held per GPU
    computing, precision) each."""
    stage: str
    jobs: int
    flops: float
    parts: list[tuple[float, float, float, str]] = field(default_factory=list)

    def gpu_hours(self, gpu_tflops: float = H100_BF16_TFLOPS, fp32_tflops: float = H100_FP32_TFLOPS) -> float:
        peak = {"bf16": gpu_tflops, "fp32": fp32_tflops}
        return sum(f * held / (peak[kind] * 1e12 * u) for f, u, held, kind in self.parts) / 3600


def _params(config: dict, slug: str) -> int:
    n = config["models"][slug].get("params")
    if n is None:
        raise ValueError(f"config key models.{slug}.params: needed for the estimate (non-embedding parameters)")
    return int(n)


def training_flops(params: int, train: dict, dataset: str) -> float:
    """6 N FLOPs per token over the epochs (or steps x batch) of the training set; 8 N with gradient checkpointing
    (the forward pass is run twice)."""
    rows, tokens = TRAIN_DATA[dataset]
    examples = train["steps"] * train["batch_size"] if "steps" in train else train["epochs"] * rows
    per_token = 8.0 if train.get("gradient_checkpointing") else 6.0
    return per_token * params * examples * tokens


def training_part(flops: float, train: dict) -> tuple[float, float, float, str]:
    """fp32 weights without mixed precision run at the FP32 peak; offload slows the step down."""
    kind = "fp32" if train.get("dtype", "fp32") == "fp32" and train.get("mixed_precision", "no") == "no" else "bf16"
    speed = UTILISATION["train"] * (OFFLOAD_SPEED if train.get("offload") else 1.0)
    return (flops, speed, 1.0, kind)


def generation_tokens(config: dict, dataset: str, model: str, strategy: str) -> tuple[float, float]:
    """(tokens the policy generates, tokens the PRM reads) over all runs and seeds of one combination. The PRM
    reads prompt + solution once per sampled candidate; in a tree search prompt + path so far once per node."""
    problems = config["datasets"][dataset].get("limit") or TEST_PROBLEMS[dataset]
    solution, prompt, steps = SOLUTION_TOKENS[dataset], PROMPT_TOKENS[dataset], SOLUTION_STEPS[dataset]
    path_reads = steps * prompt + solution * (steps + 1) / 2  # a path's nodes, each read with its prefix
    generated = read = 0.0
    for n, _ in cfg.generation_runs(config, model, strategy):
        seeds = len(cfg.seeds_for(config, strategy))
        if strategy in ("greedy", "sampling"):
            g, r = n * solution, n * (prompt + solution)
        elif strategy == "rebase":
            g, r = TREE_OVERHEAD * n * solution, TREE_OVERHEAD * n * path_reads
        else:  # mcts: about root children + 2 per further expansion, one step each, each node read with its path
            g = 2 * n * STEP_TOKENS
            r = 2 * n * (prompt + solution / 2)
        generated += seeds * problems * g
        read += seeds * problems * r
    return generated, read


def combinations(config: dict) -> set[tuple[str, str, str]]:
    """Every (dataset, model, strategy) the study measures: `evaluate` and the named figures."""
    ev = config["evaluate"]
    out = {(d, m, s) for d in ev["datasets"] for m in ev["models"] for s in ev["strategies"]}
    for f in config.get("figures", {}).values():
        out |= {(d, m, s) for d in f["datasets"] for m in f["models"] for s in f["strategies"]}
    return out


def estimate(config: dict) -> list[Stage]:
    from infscale.core.config import TREE_STRATEGIES

    trained = cfg.trained_models(config)
    train_policy = Stage("train_policy", len(trained), 0.0)
    for m in trained:
        t = config["models"][m]["train"]
        f = training_flops(_params(config, m), t, config["models"][m]["sft_dataset"])
        train_policy.flops += f
        train_policy.parts.append(training_part(f, t))
    stages = [train_policy]
    prm = config["prm"]
    if prm["source"] == "dataset":
        f = training_flops(int(prm["params"]), prm["train"], prm["dataset"])
        stages.append(Stage("train_prm", 1, f, [training_part(f, prm["train"])]))
    prm_params = int(prm.get("params") or 0)
    generate, score = Stage("generate", 0, 0.0), Stage("score", 0, 0.0)
    for d, m, s in sorted(combinations(config)):
        g, r = generation_tokens(config, d, m, s)
        gen_flops, prm_flops = 2.0 * _params(config, m) * g, 2.0 * prm_params * r
        jobs = len(cfg.generation_runs(config, m, s)) * len(cfg.seeds_for(config, s))
        tree = s in TREE_STRATEGIES
        held = cfg.job_resources(config, "generate", m)["gpu"] or 1
        tp = plan_devices(held, tree, cfg.engine_params(config, m).get("tensor_parallel_size")).tensor_parallel_size \
            if held > 1 else 1
        generate.jobs += jobs
        generate.flops += gen_flops
        generate.parts.append((gen_flops, UTILISATION["generate"], held / tp, "bf16"))  # the job holds all its GPUs
        score.flops += prm_flops
        if tree:  # the PRM scores in the generate job (one GPU) while the others wait for it
            generate.parts.append((prm_flops, UTILISATION["score"], held, "bf16"))
        else:
            score.jobs += jobs
            score.parts.append((prm_flops, UTILISATION["score"], cfg.job_resources(config, "score", m)["gpu"] or 1,
                                "bf16"))
    return stages + [generate, score]


def to_markdown(stages: list[Stage], gpu_tflops: float = H100_BF16_TFLOPS,
                fp32_tflops: float = H100_FP32_TFLOPS) -> str:
    """One row a stage; `score` FLOPs include the tree searches' PRM calls, whose GPU hours count in `generate`."""
    lines = ["| stage | jobs | FLOPs | GPU hours |", "|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s.stage} | {s.jobs} | {s.flops:.2e} | {s.gpu_hours(gpu_tflops, fp32_tflops):,.0f} |")
    total = sum(s.gpu_hours(gpu_tflops, fp32_tflops) for s in stages)
    lines.append(f"| total | {sum(s.jobs for s in stages)} | {sum(s.flops for s in stages):.2e} | {total:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m infscale.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--gpu-tflops", type=float, default=H100_BF16_TFLOPS, help="dense BF16 peak of one GPU")
    parser.add_argument("--fp32-tflops", type=float, default=H100_FP32_TFLOPS, help="FP32 peak of one GPU")
    args = parser.parse_args(argv)
    with open(args.config) as f:
        config = validate_config(yaml.safe_load(f))
    print(to_markdown(estimate(config), args.gpu_tflops, args.fp32_tflops), end="")


if __name__ == "__main__":
    main()
