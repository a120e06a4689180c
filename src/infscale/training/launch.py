"""Training jobs (policy SFT, PRM) from a spec: in this process on one GPU or CPU, or under
`accelerate launch` with FSDP (src/infscale/resources/fsdp.yaml) when the job has several GPUs. The rule's script
builds the spec from its inputs and params; `python -m infscale.training.launch spec.json` is what each accelerate
process runs."""
from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

ACCELERATE_CONFIG = Path(str(resources.files("infscale") / "resources" / "fsdp.yaml"))  # package data
SPEC_KEYS = ("kind", "data", "tokenizer", "init", "arch", "base", "train", "seed", "out", "threads", "label")


def free_port(seed: int | None = None) -> int:
    """A TCP port free on this node for the job's rendezvous: two multi-GPU jobs on one node must not both take
    accelerate's default 29500. Drawn from 20000-59999 (seeded by the SLURM job id where there is one, so
    concurrent jobs draw different ports) and checked by binding it."""
    import os
    import random
    import socket

    rng = random.Random(seed if seed is not None else (os.environ.get("SLURM_JOB_ID") or os.getpid()))
    for _ in range(100):
        port = rng.randrange(20000, 60000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # let the kernel choose
        s.bind(("", 0))
        return s.getsockname()[1]


def accelerate_command(spec_path: str | Path, num_processes: int, config_file: str | Path = ACCELERATE_CONFIG,
                       python: str = sys.executable, train: dict | None = None, port: int | None = None,
                       threads: int | None = None) -> list[str]:
    """`accelerate launch` of this module on one node with `num_processes` GPUs, on a free rendezvous port;
    `train.offload` (true, as `train` resolved by `resolve_offload`) moves the FSDP shards (weights, gradients,
    optimizer state) to CPU memory and `train.mixed_precision: bf16` has FSDP compute and gather in bf16 over fp32
    weights; `threads` (the job's CPUs) are shared among the processes (OMP_NUM_THREADS of each)."""
    from infscale.training.memory import threads_per_rank

    if num_processes < 2:
        raise ValueError(f"accelerate launch is for several GPUs, got {num_processes}")
    train = train or {}
    options = ["--main_process_port", str(port or free_port())]
    if threads:
        options += ["--num_cpu_threads_per_process", str(threads_per_rank(threads, num_processes))]
    if train.get("offload") == "auto":
        raise ValueError("train.offload auto must be resolved (launch.resolve_offload) before launching")
    if train.get("offload"):
        options += ["--fsdp_offload_params", "true"]
    if train.get("mixed_precision") == "bf16" or train.get("dtype") == "bf16":
        options += ["--mixed_precision", "bf16"]
    return [python, "-m", "accelerate.commands.launch", "--config_file", str(config_file),
            "--num_processes", str(num_processes), "--num_machines", "1", *options,
            "--module", "infscale.training.launch", str(spec_path)]


# Every training process: the caching allocator grows segments in place instead of leaving holes between fixed
# ones (the memory plan's FRAGMENTATION assumes it; torch reads it when CUDA first allocates).
TRAINING_ENV = {"PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True"}


def training_env(env=None) -> dict:
    """The environment of a training process: `env` (default os.environ) with TRAINING_ENV where it is unset."""
    import os

    env = dict(os.environ if env is None else env)
    return {**TRAINING_ENV, **env}


def init_distributed() -> None:
    """Under `accelerate launch`: create the process group before any model loads, so that FSDP's
    cpu_ram_efficient_loading applies: rank 0 reads the weights, the other ranks build the model on the meta
    device (core.models.from_pretrained_for_training) and FSDP broadcasts rank 0's weights into them. Without a
    process group every rank would load the full model: ~1 TB of host memory at 34B in fp32."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        PartialState()


def model_size(spec: dict) -> tuple[int, int | None, int | None, int, str]:
    """(parameters, hidden size, layers, logit width, architecture family) of the model a spec trains, from its
    base's or init's config.json (built on the meta device: no weights read), else from its `arch` (a GPT-NeoX
    of 12 L h^2 parameters)."""
    from infscale.training.memory import family

    source = spec.get("base") or spec.get("init")
    width = 1 if spec["kind"] == "prm" else None  # a PRM's token-classification head has one output
    if source:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(source)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
        params = sum(p.numel() for p in model.parameters())
        ratio = getattr(config, "intermediate_size", 0) / config.hidden_size
        return (params, config.hidden_size, config.num_hidden_layers, width or config.vocab_size,
                family(config.model_type, ratio))
    arch = spec["arch"]
    h, layers = int(arch["hidden_size"]), int(arch["num_layers"])
    return 12 * layers * h * h, h, layers, width or 1024, "gpt_neox"


def resolve_offload(spec: dict, gpus: int, gpu_bytes: float | None, log=print) -> dict:
    """The spec's train block with `offload: auto` decided (infscale.training.memory): offload when the memory
    plan does not fit `gpu_bytes` (the job's GPUs, measured) or an earlier attempt ran out of GPU memory."""
    from infscale.training import memory

    train = spec["train"]
    if train.get("offload") != "auto":
        return train
    params, hidden, layers, width, arch = model_size(spec)
    plan = memory.plan(params, train, gpus, vocab=width, hidden=hidden, layers=layers, arch=arch)
    oom = memory.oom_marker(spec["out"]).exists()
    offload = memory.use_offload(train, plan, gpu_bytes, oom_before=oom)
    log(f"memory plan: {params / 1e9:.1f}B parameters ({arch}) on {gpus} GPU(s): {plan.per_gpu / memory.GIB:.1f} GiB "
        f"a GPU without offload (activations {plan.activations / memory.GIB:.1f}, logits "
        f"{plan.logits / memory.GIB:.1f}), "
        f"{'unknown' if gpu_bytes is None else f'{memory.allocatable(gpu_bytes) / memory.GIB:.1f} GiB'} allocatable"
        f"{', an earlier attempt ran out of GPU memory' if oom else ''}: offload {'on' if offload else 'off'}")
    return {**train, "offload": offload}


def run_spec(spec: dict) -> dict:
    """Train what the spec describes (kind policy or prm) and save it to spec["out"]; returns the summary. A rank
    that runs out of GPU memory leaves `memory.oom_marker` (so `offload: auto` offloads on the next attempt)."""
    import os

    import torch

    from infscale.training.memory import oom_marker

    for key, value in TRAINING_ENV.items():  # before CUDA's first allocation in this process
        os.environ.setdefault(key, value)
    try:
        return _run_spec(spec)
    except torch.OutOfMemoryError:
        oom_marker(spec["out"]).touch()
        raise


def _run_spec(spec: dict) -> dict:
    import os

    from infscale.core.io import read_jsonl
    from infscale.core.models import build_causal_lm, load_pretrained_for_training
    from infscale.training.memory import threads_per_rank
    from infscale.training.tokenizer import load_tokenizer

    train, seed = spec["train"], spec["seed"]
    spec = {**spec, "threads": threads_per_rank(spec["threads"], int(os.environ.get("LOCAL_WORLD_SIZE", "1")))}
    init_distributed()
    if spec["kind"] == "policy":
        from infscale.training.sft import train_policy

        rows = read_jsonl(spec["data"], required=("question", "solution"))
        if spec.get("base"):  # a hub base, fine-tuned in the step format
            tokenizer, model = load_pretrained_for_training(spec["base"], "AutoModelForCausalLM", train["dtype"], seed)
        else:  # from scratch with the task tokenizer
            tokenizer = load_tokenizer(spec["tokenizer"])
            model = build_causal_lm(spec["arch"], tokenizer, seed)
        return train_policy(rows, tokenizer, model, train, spec["out"], seed, spec["threads"])
    if spec["kind"] == "prm":
        from infscale.training.prm_training import load_prm_for_training, train_prm

        rows = read_jsonl(spec["data"], required=("input", "label"))
        if spec.get("base"):  # a hub base with a fresh scalar head (the paper: Llemma-34B on Math-Shepherd)
            tokenizer, model = load_pretrained_for_training(spec["base"], "AutoModelForTokenClassification",
                                                            train["dtype"], seed, num_labels=1)
        else:  # from the policy checkpoint (its tokenizer inside) or from scratch with the task tokenizer
            tokenizer = load_tokenizer(spec.get("init") or spec["tokenizer"])
            model = load_prm_for_training(spec.get("init") or None, spec.get("arch"), tokenizer, seed)
        return train_prm(rows, tokenizer, model, train, spec["out"], seed, spec["threads"], spec["label"], spec["data"])
    raise ValueError(f"training spec kind must be policy or prm, got {spec['kind']!r}")


def train(spec: dict, gpus: int = 0) -> dict | None:
    """In this process (gpus <= 1), or through accelerate on `gpus` GPUs: the spec goes to a file beside the
    output, each process reads it; output of the processes goes to this job's stdout/stderr (its log)."""
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown training spec key(s) {', '.join(sorted(unknown))}")
    from infscale.core.gpus import device_memory_bytes
    from infscale.training.memory import oom_marker

    if gpus <= 1:
        return run_spec(spec)  # one process: nothing to offload (memory.use_offload)
    out = Path(spec["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = {**spec, "train": resolve_offload(spec, gpus, device_memory_bytes())}
    spec_path = out.parent / f".{out.name}.spec.json"
    spec_path.write_text(json.dumps(spec, indent=1))
    try:
        subprocess.run(accelerate_command(spec_path, gpus, train=spec["train"], threads=spec.get("threads")),
                       check=True, stdout=sys.stdout, stderr=sys.stderr, env=training_env())
    finally:
        spec_path.unlink(missing_ok=True)
    oom_marker(out).unlink(missing_ok=True)
    summary = out / "training_summary.json"
    return json.loads(summary.read_text()) if summary.exists() else None


if __name__ == "__main__":
    print(run_spec(json.loads(Path(sys.argv[1]).read_text())))
