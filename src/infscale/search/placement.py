"""Where a generation job puts its models: the policy engine and, for a tree search, the PRM.

A job with k GPUs (its `gpu` resource; SLURM or infscale.core.gpus makes devices 0..k-1 visible) and a PRM puts the
PRM on the last device and the policy on the others, tensor parallel over a power of two of them (vLLM splits
attention heads evenly); with one GPU both share it. A job asks for exactly what these use (`check_job_gpus`, at
planning): a GPU left over would be held and idle for the whole job. vLLM refuses to start when less than
`gpu_memory_utilization` x total memory is free on its devices, so the share it is given is sized from what is
really free once the PRM is loaded (minus a margin), never above the configured share.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MEMORY_MARGIN = 0.04  # share of a GPU's memory left free for CUDA context, fragmentation and sampling buffers
MIN_SHARE = 0.1  # below this vLLM would have no KV cache to speak of: an error, naming what took the memory


@dataclass(frozen=True)
class Placement:
    gpus: int  # devices the job has (0: CPU)
    policy_devices: tuple[int, ...]  # indices vLLM / the transformers engine uses (vLLM: the first tp)
    tensor_parallel_size: int | None  # None on CPU
    prm_device: str | None  # torch device of the PRM; None without one

    @property
    def shared(self) -> bool:
        return self.prm_device is not None and self.prm_device.startswith("cuda") and \
            int(self.prm_device.split(":")[1]) in self.policy_devices


def _power_of_two_at_most(n: int) -> int:
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def plan_devices(gpus: int, with_prm: bool, tensor_parallel_size: int | None = None) -> Placement:
    """The devices of the policy and the PRM on a job with `gpus` GPUs (see the module doc)."""
    if gpus <= 0:
        if tensor_parallel_size not in (None, 1):
            raise ValueError(f"config key engine.tensor_parallel_size: {tensor_parallel_size} GPUs asked, but the "
                             "job has no GPU (resources.generate.gpu)")
        return Placement(0, (), None, "cpu" if with_prm else None)
    available = gpus - 1 if with_prm and gpus >= 2 else gpus
    tp = tensor_parallel_size or _power_of_two_at_most(available)
    if tp > available:
        raise ValueError(f"config key engine.tensor_parallel_size: {tp} GPUs for the policy, but the job has "
                         f"{gpus} GPU(s){' and the PRM takes one' if available < gpus else ''}; raise "
                         "resources.generate.gpu (per model: models.<slug>.resources.generate.gpu)")
    prm_device = (f"cuda:{gpus - 1}" if gpus >= 2 else "cuda:0") if with_prm else None
    return Placement(gpus, tuple(range(tp)), tp, prm_device)


def gpus_used(placement: Placement, engine: str = "vllm") -> int:
    """Devices a job with this placement computes on: the policy's (vLLM: its tensor-parallel group; the
    transformers engine: one) and the PRM's own, if it has one."""
    if not placement.gpus:
        return 0
    policy = placement.tensor_parallel_size if engine == "vllm" else 1
    return policy + (1 if placement.prm_device is not None and not placement.shared else 0)


def check_job_gpus(config: dict) -> None:
    """Every GPU a generate job asks for is used: a job holds all its GPUs for its whole time, so one that asks
    for more than its policy (tensor parallel over a power of two) and its PRM take would pay for idle devices.
    Checked per model for sampled runs (`generate`) and tree searches (`generate_tree`: the PRM's GPU too)."""
    from infscale.core import config as cfg

    for model in config["models"]:
        engine = cfg.engine_params(config, model)
        for strategy in (None, cfg.TREE_STRATEGIES[0]):
            asked = cfg.job_resources(config, "generate", model, strategy)["gpu"]
            if asked <= 0:
                continue
            tree = strategy is not None
            key = cfg.resource_key(config, "generate", model, strategy, "gpu")
            try:
                used = gpus_used(plan_devices(asked, tree, engine.get("tensor_parallel_size")), engine["name"])
            except ValueError as e:
                raise cfg.ConfigError(f"config key {key} (model {model}): {e}") from None
            if used != asked:
                what = "the policy" + (" and the PRM" if tree else "")
                raise cfg.ConfigError(
                    f"config key {key}: {asked} GPUs "
                    f"asked for a {'tree-search' if tree else 'sampled'} generate job of {model}, but {what} use "
                    f"{used} (policy tensor parallel over a power of two, engine {engine['name']}"
                    f"{', PRM on its own GPU' if tree else ''}); ask for {used}")


def memory_share(requested: float, free_bytes: int, total_bytes: int, margin: float = MEMORY_MARGIN,
                 where: str = "") -> float:
    """The gpu_memory_utilization vLLM can be given: the configured share, or less when less is free."""
    share = min(requested, free_bytes / total_bytes - margin)
    if share < MIN_SHARE:
        raise RuntimeError(f"{where}only {free_bytes / 2**30:.1f} of {total_bytes / 2**30:.1f} GiB free on the "
                           f"policy's GPU: not enough for vLLM (weights + KV cache); give the PRM its own GPU "
                           "(resources.generate.gpu >= 2) or use a smaller PRM")
    return round(share, 3)


def model_context(model_path: str) -> int | None:
    config = Path(model_path) / "config.json"
    if not config.exists():
        return None
    value = json.loads(config.read_text()).get("max_position_embeddings")
    return int(value) if value else None


def fitted_max_model_len(model_path: str, requested: int | None) -> int | None:
    """The configured max_model_len, never above the model's own context (a study-wide 4096 also serves a
    Pythia model of context 2048); unset stays unset (vLLM takes the model's context)."""
    context = model_context(model_path)
    if requested is None or context is None:
        return requested
    return min(requested, context)


def load_policy_and_prm(engine: dict, policy_path: str, prm_path: str | None, gpus: int, prm_options: dict,
                        log=None, verifier: dict | None = None, fmt=None):
    """(engine, PRM or None) placed on the job's devices: the PRM first on its own device, then the policy
    engine with the memory share that is really free on its devices and its tensor parallel size. `verifier`
    says what kind of verifier `prm_path` holds (verifiers.load_verifier), `fmt` the policy's format it reads."""
    import torch

    from infscale.search.engines import engine_from_config
    from infscale.search.verifiers import load_verifier

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    n = gpus or visible
    if n > visible:
        raise RuntimeError(f"the job asks for {n} GPU(s) but {visible} are visible")
    placement = plan_devices(n, prm_path is not None, engine.get("tensor_parallel_size"))
    if log:
        log.info("placement: %s", placement)
    prm = load_verifier(prm_path, verifier, fmt=fmt, device=placement.prm_device, **prm_options) if prm_path else None
    options = dict(engine)
    if engine["name"] == "vllm":
        options["max_model_len"] = fitted_max_model_len(policy_path, engine.get("max_model_len"))
        if placement.gpus:
            options["tensor_parallel_size"] = placement.tensor_parallel_size
            if engine.get("kv_cache_gib") is None:
                free, total = min(torch.cuda.mem_get_info(d) for d in placement.policy_devices)
                options["gpu_memory_utilization"] = memory_share(engine.get("gpu_memory_utilization") or 0.8,
                                                                 free, total, where=f"{policy_path}: ")
        else:
            options.pop("tensor_parallel_size", None)
    else:
        options.pop("tensor_parallel_size", None)
        if placement.gpus:
            options["device"] = f"cuda:{placement.policy_devices[0]}"
    return engine_from_config(options, policy_path), prm
