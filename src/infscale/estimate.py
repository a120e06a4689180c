"""GPU hours and disk of a study before running it, from its config and the FLOPs accounting (Kaplan et al.:
training costs 6N FLOPs a token, 8N with gradient checkpointing; inference 2N a token read or generated; attention
terms left out).

    python -m infscale.estimate config/paper.yaml [--gpu-tflops 989] [--fp32-tflops 67] [--gpu-memory-gib 79.6]

What it counts (docs/design.md, "Compute estimate"):
* training runs at the peak of its precision: fp32 compute (no mixed precision) at the GPU's FP32 peak (no TF32:
  the Trainer leaves it off), bf16 or bf16 mixed precision at the BF16 peak. Whether a job offloads its FSDP
  shards to CPU memory comes from its memory plan (infscale.training.memory, the launcher's own decision, for a GPU
  of --gpu-memory-gib); an offloaded step also moves each rank's shard over PCIe twice a micro-step and its
  gradients back, then runs Adam on the CPU (--pcie-gbps, --host-gbps);
* a job holds all its GPUs for its whole wall time, and that time includes reading the weights (--read-gbps) and
  starting the engine, and, for training, writing checkpoints (--write-gbps). A tree search's policy (tensor
  parallel) and PRM (its own GPU) take turns: the GPUs of the one wait while the other computes, counted as idle;
* FLOPs are the paper's convention: the PRM reads the prompt with every call, once per candidate after sampling
  and once per scored node in a tree search, besides the path so far. Its time counts what it computes: prefixes
  shared by a problem's candidates or a node's siblings are read once (search/prefix_scoring.py).
Assumptions that remain: the constants below (rows and mean tokens of the released data sets, prompt and solution
lengths, steps a solution, shares of peak, start-up times), no attention FLOPs, no queueing, prefix caching of the
policy's prompts taken as free. An order of magnitude for planning an allocation, not a measurement."""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from infscale.core import config as cfg
from infscale.core.validation import validate_config
from infscale.search.placement import check_job_gpus, plan_devices
from infscale.training import memory

# Rows and mean tokens (prompt + solution) of the training sets; problems and mean tokens a solution at test time.
TRAIN_DATA = {"metamath": (395_000, 250), "metamath-gsm8k": (240_000, 200), "math-shepherd": (445_000, 300)}
TEST_PROBLEMS = {"math500": 500, "gsm8k": 1319, "mbpp": 500}
# Table 4: Llemma-7B greedy 3.92e12 / 2.3e12 FLOPs a question. MBPP (Table 3, an assumption: docs/paper.md): an
# instruct model's fenced function and a line of prose; its reference solutions average 183 characters, ~55 tokens.
SOLUTION_TOKENS = {"math500": 300, "gsm8k": 180, "mbpp": 150}
# mean question length (Llama tokenizer), re-read by every PRM call; MBPP: the task, its 3 asserts (305 characters
# on average) and the chat template
PROMPT_TOKENS = {"math500": 100, "gsm8k": 80, "mbpp": 120}
SOLUTION_STEPS = {"math500": 8, "gsm8k": 5, "mbpp": 12}  # steps a solution (code: logical lines and prose lines)
STEP_TOKENS = 50  # MCTS: one expansion generates about one step
# Tokens a PRM family's template adds to each text it reads (search/prm_families.py, docs/verifiers.md), beyond the
# question and the solution with its step delimiters: (once a read, per step). qwen_prm: the system turn with the
# model card's prompt (~17 tokens) and ChatML's turn markers (<extra_0> takes the delimiter's place); rlhflow:
# BOS and Llama-3.1's system turn with its dates, then per step a user and an assistant header, `+` and two
# <|eot_id|>; skywork, token_classification: a BOS (a newline or separator takes the delimiter's place).
PRM_TEMPLATE_TOKENS = {"math_shepherd": (0, 0), "qwen_prm": (32, 0), "rlhflow": (26, 10), "skywork": (1, 0),
                       "token_classification": (1, 0)}
TREE_OVERHEAD = 1.2  # REBASE generates ~1.2x the tokens of sampling at equal n (Table 4: 148.0 / 125.4)
SIBLINGS = 3.4  # REBASE children per expanded node: `allocate` at T_b 0.1 over uniform rewards, widths 8-128
# Beam search and DVTS keep N paths a depth as REBASE does (counted like it); their siblings are `beam_width`.
# Vocabulary of each architecture family's released models (the logits' width): Pythia 50,304 (padded),
# Llama-2/Llemma 32,016, Mistral 32,000, Llama-3 128,256.
VOCAB = {"gpt_neox": 50_304, "llama": 32_016, "mistral": 32_000, "llama3": 128_256}
UTILISATION = {"train": 0.35, "generate": 0.15, "score": 0.4}  # share of the precision's peak reached
H100_BF16_TFLOPS = 989.0  # dense
H100_FP32_TFLOPS = 67.0  # non-tensor-core FP32
H100_TF32_TFLOPS = 494.0  # TF32 tensor cores, dense (train.tf32)
H100_MEMORY_GIB = 79.6  # 81,559 MiB, as nvidia-smi reports an H100 80 GB (what the launcher measures)
WEIGHT_BYTES = 2  # hub bases, released and saved checkpoints: bf16 / fp16
VLLM_START_S = 120.0  # vLLM start-up besides reading weights: memory profiling, KV cache, CUDA graphs
PRM_START_S = 30.0  # transformers: building the model and moving it to its GPU
TRAIN_START_S = 120.0  # process group, rank 0 loading, FSDP sharding and broadcast besides reading weights
TEXT_BYTES = 30  # disk per generated token: text and JSON (~10 bytes) in shards, the generation and the scored file
DATA_BYTES = 8  # disk per training-set token (JSONL)


@dataclass(frozen=True)
class Hardware:
    bf16_tflops: float = H100_BF16_TFLOPS
    fp32_tflops: float = H100_FP32_TFLOPS
    gpu_memory_gib: float = H100_MEMORY_GIB
    pcie_gbps: float = 20.0  # host <-> one GPU, pinned, achieved
    host_gbps: float = 100.0  # a node's CPU memory bandwidth reached by a CPU Adam step
    read_gbps: float = 2.0  # one job reading weights from the shared file system
    write_gbps: float = 2.0  # one job writing a checkpoint
    # NCCL bus bandwidth between the GPUs of a node: 8 x H100 SXM reach ~370 GB/s all-reduce busbw without NVLS
    # (nccl-tests, NVIDIA/nccl#2140)
    nvlink_gbps: float = 360.0
    tf32_tflops: float = H100_TF32_TFLOPS

    def peak(self, kind: str) -> float:
        return {"bf16": self.bf16_tflops, "fp32": self.fp32_tflops, "tf32": self.tf32_tflops}[kind] * 1e12


@dataclass
class Part:
    """Wall seconds (summed over the stage's jobs) during which a job holds `held` GPUs of which `busy` compute."""
    what: str  # compute | offload | sync | load | checkpoint
    seconds: float
    held: int
    busy: float


@dataclass
class Stage:
    stage: str
    jobs: int
    flops: float
    parts: list[Part] = field(default_factory=list)
    longest_h: float = 0.0  # wall hours of its longest job
    runtime_h: float | None = None  # the time limit its jobs ask for

    def gpu_hours(self) -> float:
        return sum(p.seconds * p.held for p in self.parts) / 3600

    def idle_hours(self) -> float:
        """GPU hours held but not computing: waiting for the other model, for PCIe and the CPU, loading, saving."""
        return sum(p.seconds * (p.held - p.busy) for p in self.parts) / 3600

    def hours_of(self, what: str) -> float:
        return sum(p.seconds * p.held for p in self.parts if p.what == what) / 3600


def _params(config: dict, slug: str) -> int:
    n = config["models"][slug].get("params")
    if n is None:
        raise ValueError(f"config key models.{slug}.params: needed for the estimate (non-embedding parameters)")
    return int(n)


def _examples(train: dict, dataset: str) -> float:
    rows, _ = TRAIN_DATA[dataset]
    return train["steps"] * train["batch_size"] if "steps" in train else train["epochs"] * rows


def training_flops(params: int, train: dict, dataset: str) -> float:
    """6 N FLOPs per token over the epochs (or steps x batch) of the training set; 8 N with gradient checkpointing
    (the forward pass is run twice)."""
    per_token = 8.0 if train.get("gradient_checkpointing") else 6.0
    return per_token * params * _examples(train, dataset) * TRAIN_DATA[dataset][1]


def compute_kind(train: dict) -> str:
    """fp32 weights without mixed precision compute in fp32 (TF32 with `train.tf32`); bf16 or bf16 mixed
    precision in bf16."""
    if train.get("dtype", "fp32") == "fp32" and train.get("mixed_precision", "no") == "no":
        return "tf32" if train.get("tf32") else "fp32"
    return "bf16"


@dataclass
class TrainingJob:
    rule: str  # train_policy | train_prm
    name: str
    gpus: int
    host_ask: float | None  # bytes of host memory the job asks for (resources mem_mb)
    plan: memory.MemoryPlan
    offload: bool
    hours: dict  # wall hours: compute, offload, sync (communication not hidden by compute), load, checkpoint
    checkpoint_bytes: float  # one Trainer checkpoint (sharded weights in the master dtype and Adam)
    final_bytes: float

    @property
    def wall_h(self) -> float:
        return sum(self.hours.values())


FSDP_COLLECTIVES = 3  # a micro-step: all-gather for forward and again for backward, reduce-scatter of gradients


def sync_seconds(plan: memory.MemoryPlan, params: int, hw: Hardware) -> float:
    """Seconds of FSDP communication a micro-step (FULL_SHARD, gradients synchronised every micro-step):
    FSDP_COLLECTIVES passes of the parameters in compute precision (accelerate reduces in bf16 too under bf16 mixed
    precision), each GPU sending and receiving (n - 1) / n of them, at the collectives' bus bandwidth. 34B in bf16
    on 8 GPUs: 177 GB a GPU, ~0.5 s at 360 GB/s."""
    n = plan.gpus
    return FSDP_COLLECTIVES * params * plan.compute_bytes * (n - 1) / n / (hw.nvlink_gbps * 1e9)


def training_job(rule: str, name: str, params: int, train: dict, dataset: str, gpus: int, hw: Hardware,
                 vocab: int = memory.LOGIT_VOCAB, mem_mb: float | None = None,
                 arch: str = memory.UNKNOWN_FAMILY) -> TrainingJob:
    """One fine-tuning job's wall time, by part, and its memory plan (offload as the launcher decides it)."""
    world = max(1, gpus)
    flops = training_flops(params, train, dataset)
    compute = flops / (world * hw.peak(compute_kind(train)) * UTILISATION["train"])
    hidden, layers = memory.shape(params)
    embeddings = 2 * VOCAB.get(arch, memory.LOGIT_VOCAB) * hidden  # input and output, untied
    plan = memory.plan(params + embeddings, train, world, vocab=vocab, data_tokens=math.prod(TRAIN_DATA[dataset]),
                       arch=arch, hidden=hidden, layers=layers)
    offload = memory.use_offload(train, plan, hw.gpu_memory_gib * memory.GIB)
    steps = math.ceil(_examples(train, dataset) / int(train["batch_size"]))
    extra = sync = 0.0
    if offload:  # a step: max(compute, transfers) then the CPU Adam step
        transfer, adam = memory.offload_step_seconds(params, train, world, hw.pcie_gbps, hw.host_gbps)
        extra = steps * (max(compute / steps, transfer) + adam) - compute
    elif world > 1:  # FSDP's collectives each micro-step, overlapped with its compute at best (prefetch)
        micro_steps = steps * math.ceil(int(train["batch_size"]) / (memory.micro_batch(train, world) * world))
        per_micro = sync_seconds(plan, params + embeddings, hw)
        sync = micro_steps * max(0.0, per_micro - compute / micro_steps)
    checkpoint = (plan.master_bytes + 8) * params  # weights in the master dtype and Adam's two fp32 moments
    saves = steps // int(train["save_steps"]) if train.get("save_steps") else 0
    final = WEIGHT_BYTES * params
    hours = {"compute": compute / 3600, "offload": extra / 3600, "sync": sync / 3600,
             "load": (WEIGHT_BYTES * params / (hw.read_gbps * 1e9) + TRAIN_START_S) / 3600,
             "checkpoint": (saves * checkpoint + final) / (hw.write_gbps * 1e9) / 3600}
    return TrainingJob(rule, name, world, None if mem_mb is None else mem_mb * 1e6, plan, offload, hours,
                       checkpoint if saves else 0.0, final)


def training_jobs(config: dict, hw: Hardware = Hardware()) -> list[TrainingJob]:
    jobs = []
    for m in cfg.trained_models(config):
        t = config["models"][m]["train"]
        res = cfg.job_resources(config, "train_policy", m)
        hub = config["models"][m].get("hub_id")
        arch = memory.family(hub) if hub else "gpt_neox"
        jobs.append(training_job("train_policy", m, _params(config, m), t, config["models"][m]["sft_dataset"],
                                 res["gpu"], hw, vocab=VOCAB[arch], mem_mb=res.get("mem_mb"), arch=arch))
    prm = config["prm"]
    if prm["source"] == "dataset":
        res = cfg.job_resources(config, "train_prm")
        jobs.append(training_job("train_prm", prm["name"], int(prm["params"]), prm["train"], prm["dataset"],
                                 res["gpu"], hw, vocab=1, mem_mb=res.get("mem_mb"),
                                 arch=memory.family(prm.get("hub_id"))))
    return jobs


def prm_read_shape(config: dict, dataset: str) -> tuple[float, float, int]:
    """(prompt, solution, steps) as the study's PRM reads them: its family's template tokens added
    (PRM_TEMPLATE_TOKENS; none for math_shepherd and a policy's likelihood)."""
    fixed, per_step = PRM_TEMPLATE_TOKENS.get(config["prm"].get("family", "math_shepherd"), (0, 0))
    steps = SOLUTION_STEPS[dataset]
    return PROMPT_TOKENS[dataset] + fixed, SOLUTION_TOKENS[dataset] + per_step * steps, steps


def run_tokens(config: dict, dataset: str, strategy: str, n: int) -> tuple[float, float]:
    """(tokens the policy generates, tokens the PRM reads) of one run (one seed) at budget n. The PRM reads
    prompt + solution once per sampled candidate; in a tree search prompt + path so far once per node; each read
    with its family's template tokens."""
    problems = config["datasets"][dataset].get("limit") or TEST_PROBLEMS[dataset]
    generated = SOLUTION_TOKENS[dataset]
    prompt, solution, steps = prm_read_shape(config, dataset)
    path_reads = steps * prompt + solution * (steps + 1) / 2  # a path's nodes, each read with its prefix
    if strategy in cfg.PREFIX_STRATEGIES:
        g, r = n * generated, n * (prompt + solution)
    elif strategy in ("rebase", *cfg.BEAM_STRATEGIES):
        g, r = TREE_OVERHEAD * n * generated, TREE_OVERHEAD * n * path_reads
    else:  # mcts: about root children + 2 per further expansion, one step each, each node read with its path
        g, r = 2 * n * STEP_TOKENS, 2 * n * (prompt + solution / 2)
    return problems * g, problems * r


def prm_tokens_computed(config: dict, dataset: str, strategy: str, n: int) -> float:
    """Tokens the PRM computes in one run, its shared prefixes read once (search/prefix_scoring.py): a problem's
    sampled candidates share the prompt; a tree node shares the prompt and its parent's path with its siblings
    (REBASE: SIBLINGS a parent on average; beam search, DVTS: `beam_width`; MCTS: its `children`)."""
    problems = config["datasets"][dataset].get("limit") or TEST_PROBLEMS[dataset]
    prompt, solution, steps = prm_read_shape(config, dataset)
    if strategy in cfg.PREFIX_STRATEGIES:
        return problems * (prompt + n * solution)
    if strategy in ("rebase", *cfg.BEAM_STRATEGIES):  # a path's nodes: prefixes over the siblings, then own step
        beam = config["strategies"][strategy].get("beam_width", cfg.DEFAULT_BEAM_WIDTH)
        siblings = SIBLINGS if strategy == "rebase" else int(beam)
        path = (steps * prompt + solution * (steps - 1) / 2) / siblings + solution
        return problems * TREE_OVERHEAD * n * path
    children = int(config["strategies"][strategy].get("children", 2))
    return problems * 2 * n * ((prompt + solution / 2 - STEP_TOKENS) / children + STEP_TOKENS)


def generation_tokens(config: dict, dataset: str, model: str, strategy: str) -> tuple[float, float]:
    """(tokens generated, tokens the PRM reads) over all runs and seeds of one combination."""
    seeds = len(cfg.seeds_for(config, strategy))
    runs = [run_tokens(config, dataset, strategy, n) for n, _ in cfg.generation_runs(config, model, strategy)]
    return seeds * sum(g for g, _ in runs), seeds * sum(r for _, r in runs)


def combinations(config: dict) -> set[tuple[str, str, str]]:
    """Every (dataset, model, strategy) the study measures: `evaluate` and the named figures."""
    ev = config["evaluate"]
    out = {(d, m, s) for d in ev["datasets"] for m in ev["models"] for s in ev["strategies"]}
    for f in config.get("figures", {}).values():
        out |= {(d, m, s) for d in f["datasets"] for m in f["models"] for s in f["strategies"]}
    return out


def _runtime_h(config: dict, rule: str, model: str | None = None, strategy: str | None = None) -> float | None:
    minutes = cfg.job_resources(config, rule, model, strategy).get("runtime")
    return None if minutes is None else minutes / 60


def estimate(config: dict, hw: Hardware = Hardware()) -> list[Stage]:
    trained = training_jobs(config, hw)
    stages = []
    for rule in ("train_policy", "train_prm"):
        jobs = [j for j in trained if j.rule == rule]
        if not jobs:
            continue
        limits = [_runtime_h(config, rule, j.name if rule == "train_policy" else None) for j in jobs]
        stage = Stage(rule, len(jobs), 0.0, runtime_h=max((h for h in limits if h is not None), default=None))
        for j in jobs:
            spec = config["models"][j.name] if rule == "train_policy" else config["prm"]
            dataset = spec.get("sft_dataset") or spec["dataset"]
            stage.flops += training_flops(int(spec["params"]), spec["train"], dataset)
            stage.parts += [Part(what, h * 3600, j.gpus, j.gpus if what == "compute" else 0)
                            for what, h in j.hours.items()]
            stage.longest_h = max(stage.longest_h, j.wall_h)
        stages.append(stage)
    prm = config["prm"]
    # a policy-likelihood verifier is its policy: it reads as many parameters
    prm_params = _params(config, prm["policy"]) if prm["source"] == "policy_likelihood" else int(prm.get("params") or 0)
    prm_load = WEIGHT_BYTES * prm_params / (hw.read_gbps * 1e9) + PRM_START_S
    generate, score = Stage("generate", 0, 0.0, runtime_h=_runtime_h(config, "generate")), \
        Stage("score", 0, 0.0, runtime_h=_runtime_h(config, "score"))
    bf16 = hw.peak("bf16")
    for d, m, s in sorted(combinations(config)):
        tree = s in cfg.TREE_STRATEGIES
        held = cfg.job_resources(config, "generate", m, s)["gpu"] or 1
        tp = plan_devices(held, tree, cfg.engine_params(config, m).get("tensor_parallel_size")).tensor_parallel_size
        policy_load = WEIGHT_BYTES * _params(config, m) / (hw.read_gbps * 1e9) + VLLM_START_S
        score_gpus = cfg.job_resources(config, "score", m)["gpu"] or 1
        for n, _ in cfg.generation_runs(config, m, s):
            g, r = run_tokens(config, d, s, n)
            gen_flops, prm_flops = 2.0 * _params(config, m) * g, 2.0 * prm_params * r
            gen_s = gen_flops / (tp * bf16 * UTILISATION["generate"])  # tensor parallel over tp GPUs
            computed = 2.0 * prm_params * prm_tokens_computed(config, d, s, n)  # shared prefixes read once
            prm_s = computed / (bf16 * UTILISATION["score"])  # one GPU
            load_s = policy_load + (prm_load if tree else 0.0)
            for _ in cfg.seeds_for(config, s):
                generate.jobs += 1
                generate.flops += gen_flops
                score.flops += prm_flops
                generate.parts += [Part("compute", gen_s, held, tp), Part("load", load_s, held, 0)]
                if tree:  # the PRM scores in the generate job while the policy's GPUs wait, and the other way round
                    generate.parts.append(Part("compute", prm_s, held, 1))
                    generate.longest_h = max(generate.longest_h, (gen_s + prm_s + load_s) / 3600)
                else:
                    generate.longest_h = max(generate.longest_h, (gen_s + load_s) / 3600)
                    score.jobs += 1
                    score.parts += [Part("compute", prm_s, score_gpus, 1), Part("load", prm_load, score_gpus, 0)]
                    score.longest_h = max(score.longest_h, (prm_s + prm_load) / 3600)
    return stages + [generate, score]


def to_markdown(stages: list[Stage]) -> str:
    """One row a stage; `score` FLOPs include the tree searches' PRM calls, whose GPU hours count in `generate`.
    Idle: GPU hours held but not computing (waiting for the job's other model, offload transfers, loading,
    saving)."""
    lines = ["| stage | jobs | FLOPs | GPU hours | of which idle | loading + saving | CPU offload | gradient sync "
             "past compute | longest job (h) |", "|---|---|---|---|---|---|---|---|---|"]
    for s in stages:
        limit = "" if s.runtime_h is None else f" (limit {s.runtime_h:.0f})"
        over = " OVER: resumes on a retry" if s.runtime_h is not None and s.longest_h > s.runtime_h else ""
        lines.append(f"| {s.stage} | {s.jobs} | {s.flops:.2e} | {s.gpu_hours():,.0f} | {s.idle_hours():,.0f} | "
                     f"{s.hours_of('load') + s.hours_of('checkpoint'):,.0f} | {s.hours_of('offload'):,.0f} | "
                     f"{s.hours_of('sync'):,.0f} | "
                     f"{s.longest_h:.1f}{limit}{over} |")
    total = sum(s.gpu_hours() for s in stages)
    idle = sum(s.idle_hours() for s in stages)
    overhead = sum(s.hours_of("load") + s.hours_of("checkpoint") for s in stages)
    lines.append(f"| total | {sum(s.jobs for s in stages)} | {sum(s.flops for s in stages):.2e} | {total:,.0f} | "
                 f"{idle:,.0f} | {overhead:,.0f} | {sum(s.hours_of('offload') for s in stages):,.0f} | "
                 f"{sum(s.hours_of('sync') for s in stages):,.0f} | |")
    return "\n".join(lines) + "\n"


def memory_markdown(jobs: list[TrainingJob], hw: Hardware = Hardware()) -> str:
    """The memory plan of each fine-tuning job: what a GPU needs without offload against the GPU's memory."""
    budget = memory.allocatable(hw.gpu_memory_gib * memory.GIB) / memory.GIB
    lines = [f"| training job | GPUs | GiB a GPU without offload (of {budget:.1f} allocatable) | offload | "
             "host GiB of the node: rank 0's model + every rank's process and data + offloaded shards "
             "(the job asks) | wall hours |", "|---|---|---|---|---|---|"]
    for j in jobs:
        p = j.plan
        ask = "" if j.host_ask is None else f" ({j.host_ask / memory.GIB:,.0f}" + \
            (" OVER" if p.host(j.offload) > j.host_ask else "") + ")"
        lines.append(f"| {j.name} | {j.gpus} | {p.per_gpu / memory.GIB:.1f} | {'yes' if j.offload else 'no'} | "
                     f"{p.host_rank0 / memory.GIB:,.0f} + {p.gpus} x {p.host_rank / memory.GIB:.1f} + "
                     f"{(p.host_offload if j.offload else 0) / memory.GIB:,.0f} = "
                     f"{p.host(j.offload) / memory.GIB:,.0f}{ask} | {j.wall_h:.1f} |")
    return "\n".join(lines) + "\n"


def with_tf32(config: dict) -> dict:
    """The study with `train.tf32` on for every job that computes in fp32 (the policies of Table 2's FP32)."""
    import copy

    out = copy.deepcopy(config)
    for block in [*out["models"].values(), out["prm"]]:
        if "train" in block and compute_kind(block["train"]) == "fp32":
            block["train"]["tf32"] = True
    return out


def tf32_markdown(config: dict, hw: Hardware = Hardware()) -> str:
    """Training GPU hours as configured beside the same study with TF32 for its fp32-compute jobs."""
    rows = []
    for label, c in (("as configured", config), ("fp32 jobs with train.tf32", with_tf32(config))):
        stages = [s for s in estimate(c, hw) if s.stage in ("train_policy", "train_prm")]
        rows.append(f"| {label} | {sum(s.gpu_hours() for s in stages):,.0f} | "
                    f"{max((s.longest_h for s in stages), default=0):.1f} |")
    return "\n".join(["| training (TF32 off by default: Table 2 says FP32) | GPU hours | longest job (h) |",
                      "|---|---|---|", *rows]) + "\n"


@dataclass
class Disk:
    rows: list[tuple[str, float]]  # (what, bytes) kept at the end of the study
    training_peak: float  # bytes of training checkpoints if every training job ran at once
    largest_job: tuple[str, float]  # the training job with the most checkpoint bytes at its peak

    @property
    def kept(self) -> float:
        return sum(b for _, b in self.rows)


def disk(config: dict, hw: Hardware = Hardware()) -> Disk:
    """Bytes a study writes under results/: hub bases and released checkpoints, trained models (save dtype), the
    generations and scores; while training, each job keeps two Trainer checkpoints at its peak (the last one and
    the one being written: save_total_limit 1 removes the older only after the newer is complete)."""
    bases: dict[str, int] = {}
    for m in config["models"]:
        spec = config["models"][m]
        source = spec.get("hub_id") or spec.get("checkpoint")
        if source:
            bases[source] = _params(config, m)
    prm = config["prm"]
    if prm["source"] == "dataset" and prm.get("hub_id"):
        bases[prm["hub_id"]] = int(prm["params"])
    elif prm["source"] == "checkpoint":
        bases[prm["checkpoint"]] = int(prm.get("params") or 0)
    jobs = training_jobs(config, hw)
    data = sum(rows * tokens * DATA_BYTES for name, (rows, tokens) in TRAIN_DATA.items()
               if name in config["datasets"])
    generated = sum(generation_tokens(config, d, m, s)[0] for d, m, s in combinations(config))
    rows = [("hub bases and released checkpoints (bf16)", WEIGHT_BYTES * sum(bases.values())),
            ("trained policies and PRM (save_dtype)", sum(j.final_bytes for j in jobs)),
            ("training data", data), ("generations, their shards and scores", TEXT_BYTES * generated)]
    peaks = [(j.name, 2 * j.checkpoint_bytes) for j in jobs]
    largest = max(peaks, key=lambda p: p[1]) if peaks else ("", 0.0)
    return Disk(rows, sum(b for _, b in peaks), largest)


def disk_markdown(d: Disk) -> str:
    tb = 1e12
    lines = ["| disk (results/) | TB |", "|---|---|"]
    lines += [f"| {what} | {b / tb:.2f} |" for what, b in d.rows]
    lines.append(f"| kept at the end | {d.kept / tb:.2f} |")
    lines.append(f"| while training: checkpoints of one job at its peak ({d.largest_job[0]}) | "
                 f"{d.largest_job[1] / tb:.2f} |")
    lines.append(f"| peak: everything kept + the checkpoints of all training jobs at once | "
                 f"{(d.kept + d.training_peak) / tb:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m infscale.estimate", description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    defaults = Hardware()
    parser.add_argument("--gpu-tflops", type=float, default=defaults.bf16_tflops, help="dense BF16 peak of one GPU")
    parser.add_argument("--fp32-tflops", type=float, default=defaults.fp32_tflops, help="FP32 peak of one GPU")
    parser.add_argument("--gpu-memory-gib", type=float, default=defaults.gpu_memory_gib, help="memory of one GPU")
    parser.add_argument("--pcie-gbps", type=float, default=defaults.pcie_gbps, help="host <-> GPU, GB/s")
    parser.add_argument("--host-gbps", type=float, default=defaults.host_gbps, help="CPU memory bandwidth, GB/s")
    parser.add_argument("--read-gbps", type=float, default=defaults.read_gbps, help="weights read by a job, GB/s")
    parser.add_argument("--write-gbps", type=float, default=defaults.write_gbps, help="checkpoints written, GB/s")
    parser.add_argument("--nvlink-gbps", type=float, default=defaults.nvlink_gbps,
                        help="NCCL bus bandwidth between a node's GPUs, GB/s")
    args = parser.parse_args(argv)
    hw = Hardware(args.gpu_tflops, args.fp32_tflops, args.gpu_memory_gib, args.pcie_gbps, args.host_gbps,
                  args.read_gbps, args.write_gbps, args.nvlink_gbps)
    with open(args.config) as f:
        config = validate_config(yaml.safe_load(f))
    check_job_gpus(config)
    print(to_markdown(estimate(config, hw)), end="")
    print()
    print(memory_markdown(training_jobs(config, hw), hw), end="")
    print()
    print(tf32_markdown(config, hw), end="")
    print()
    print(disk_markdown(disk(config, hw)), end="")


if __name__ == "__main__":
    main()
