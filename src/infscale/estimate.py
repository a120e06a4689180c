"""GPU hours of a study before running it, from its config and the FLOPs accounting (Kaplan et al.: training
costs 6N FLOPs a token, inference 2N a token read or generated; attention terms left out).

    python -m infscale.estimate config/paper.yaml [--gpu-tflops 989]

Sizes the config cannot know before the data is downloaded are the constants below (rows and mean tokens of the
released data sets; tokens a solution from the paper's Table 4: greedy FLOPs / 2N). Throughput is a share of the
GPU's dense BF16 peak per stage: training and PRM scoring are compute-bound, decoding is memory-bound. The result
is an order of magnitude for planning an allocation, not a measurement."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from . import config as cfg

# Rows and mean tokens (prompt + solution) of the training sets; problems and mean tokens a solution at test time.
TRAIN_DATA = {"metamath": (395_000, 250), "metamath-gsm8k": (240_000, 200), "math-shepherd": (445_000, 300)}
TEST_PROBLEMS = {"math500": 500, "gsm8k": 1319}
SOLUTION_TOKENS = {"math500": 300, "gsm8k": 180}  # Table 4: Llemma-7B greedy 3.92e12 / 2.3e12 FLOPs a question
STEP_TOKENS = 50  # MCTS: one expansion generates about one step
TREE_OVERHEAD = 1.2  # REBASE generates ~1.2x the tokens of sampling at equal n (Table 4: 148.0 / 125.4)
PRM_READS_TREE = 3.5  # a tree search's PRM re-reads each path at every depth: about 3.5 solution lengths a candidate
UTILISATION = {"train": 0.35, "generate": 0.15, "score": 0.4}
H100_BF16_TFLOPS = 989.0


@dataclass
class Stage:
    stage: str
    jobs: int
    flops: float
    utilisation: float

    def gpu_hours(self, gpu_tflops: float = H100_BF16_TFLOPS) -> float:
        return self.flops / (gpu_tflops * 1e12 * self.utilisation) / 3600


def _params(config: dict, slug: str) -> int:
    n = config["models"][slug].get("params")
    if n is None:
        raise ValueError(f"config key models.{slug}.params: needed for the estimate (non-embedding parameters)")
    return int(n)


def training_flops(params: int, train: dict, dataset: str) -> float:
    """6 N FLOPs per token over the epochs (or steps x batch) of the training set."""
    rows, tokens = TRAIN_DATA[dataset]
    examples = train["steps"] * train["batch_size"] if "steps" in train else train["epochs"] * rows
    return 6.0 * params * examples * tokens


def generation_tokens(config: dict, dataset: str, model: str, strategy: str) -> tuple[float, float]:
    """(tokens the policy generates, tokens the PRM reads) over all runs and seeds of one combination."""
    problems = config["datasets"][dataset].get("limit") or TEST_PROBLEMS[dataset]
    solution = SOLUTION_TOKENS[dataset]
    generated = read = 0.0
    for n, _ in cfg.generation_runs(config, model, strategy):
        seeds = len(cfg.seeds_for(config, strategy))
        if strategy in ("greedy", "sampling"):
            g, r = n * solution, n * solution
        elif strategy == "rebase":
            g, r = TREE_OVERHEAD * n * solution, PRM_READS_TREE * n * solution
        else:  # mcts: about root children + 2 per further expansion, one step each
            g = 2 * n * STEP_TOKENS
            r = g * PRM_READS_TREE
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
    stages = []
    trained = cfg.trained_models(config)
    stages.append(Stage("train_policy", len(trained), sum(
        training_flops(_params(config, m), config["models"][m]["train"], config["models"][m]["sft_dataset"])
        for m in trained), UTILISATION["train"]))
    prm = config["prm"]
    if prm["source"] == "dataset":
        stages.append(Stage("train_prm", 1, training_flops(int(prm["params"]), prm["train"], prm["dataset"]),
                            UTILISATION["train"]))
    prm_params = int(prm.get("params") or 0)
    gen = score = 0.0
    jobs = 0
    for d, m, s in sorted(combinations(config)):
        g, r = generation_tokens(config, d, m, s)
        gen += 2.0 * _params(config, m) * g
        score += 2.0 * prm_params * r
        jobs += len(cfg.generation_runs(config, m, s)) * len(cfg.seeds_for(config, s))
    stages.append(Stage("generate", jobs, gen, UTILISATION["generate"]))
    stages.append(Stage("score", jobs, score, UTILISATION["score"]))
    return stages


def to_markdown(stages: list[Stage], gpu_tflops: float = H100_BF16_TFLOPS) -> str:
    lines = ["| stage | jobs | FLOPs | GPU hours |", "|---|---|---|---|"]
    for s in stages:
        lines.append(f"| {s.stage} | {s.jobs} | {s.flops:.2e} | {s.gpu_hours(gpu_tflops):,.0f} |")
    total = sum(s.gpu_hours(gpu_tflops) for s in stages)
    lines.append(f"| total | {sum(s.jobs for s in stages)} | {sum(s.flops for s in stages):.2e} | {total:,.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m infscale.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--gpu-tflops", type=float, default=H100_BF16_TFLOPS, help="dense BF16 peak of one GPU")
    args = parser.parse_args(argv)
    with open(args.config) as f:
        config = cfg.validate_config(yaml.safe_load(f))
    print(to_markdown(estimate(config), args.gpu_tflops), end="")


if __name__ == "__main__":
    main()
