"""Memory of a fine-tuning job, computed from its config before it runs: what each GPU and rank 0's host hold under
FSDP (FULL_SHARD over the job's GPUs), and whether the shards must go to CPU memory (`train.offload: auto`). The
training launcher decides with it at job time (GPU memory measured there), the estimate with an assumed GPU.

Precision, as accelerate and the Trainer apply it (accelerate 1.15 `Accelerator.prepare_model`, FSDP and FSDP2
alike): with mixed precision on (`mixed_precision: bf16`, or `dtype: bf16|fp16`, which the launcher turns into
accelerate's `--mixed_precision`), trainable FSDP parameters are upcast to fp32 after sharding, so several GPUs
always keep fp32 master weights, gradients and Adam moments (16 bytes a parameter, sharded) and compute in the
low precision. Only one process with `dtype: bf16` trains in pure bf16 (8 bytes a parameter, no master weights).

Sizes use the config's `params` (non-embedding) with the shape of a decoder of aspect ratio hidden/layers = 128
(Llama 7B 4096/32, Llemma 34B 8192/48): an arithmetic plan, within a few GiB of the truth, not a measurement; a
job that still runs out of GPU memory leaves a marker and its next attempt offloads (`oom_marker`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30
ASPECT = 128  # hidden size / layers of a Llama-style decoder
UNSHARDED_SHARE = 0.1  # parameters unsharded at once in compute precision: root (embeddings), 2 layers, 1 layer's grads
ACTIVATION_BYTES = 34  # per token, layer and hidden unit without recomputation (Korthikanti et al., flash attention)
LOGIT_VOCAB = 128_256  # the largest vocabulary of the paper's models (Llama-3): logits, their fp32 copy and grad
FIXED_RESERVE_GIB = 3.0  # CUDA context and NCCL buffers a rank keeps
FRAGMENTATION = 1.05  # the caching allocator's overhead over what is live
OFFLOAD_HOST_BYTES = 16  # per parameter in CPU memory when offloaded: fp32 weights, gradients, Adam moments
ADAM_HOST_TRAFFIC = 28  # bytes of CPU memory moved per parameter by a CPU Adam step (read 4 tensors, write 3)
OFFLOAD_TRANSFER_BYTES = 12  # per parameter and micro-step and rank: weights up for forward and backward, grads down
# Host memory of every rank, besides rank 0's full copy of the model at load and save (the other ranks build it on
# the meta device: core.models.from_pretrained_for_training; they hold no weights on the host):
RANK_PROCESS_GIB = 5.0  # python, torch, transformers, the CUDA context's host side, NCCL's host buffers (assumed)
# Each rank reads the training rows and keeps them encoded as Python lists: 49 bytes a token measured with
# tracemalloc (ids over 256 are 28-byte int objects plus an 8-byte pointer; labels share the completion's objects)
# plus the rows' text as read (~11 bytes a token).
DATA_HOST_BYTES_PER_TOKEN = 60


@dataclass(frozen=True)
class MemoryPlan:
    gpus: int
    master_bytes: int  # per parameter: fp32 master weights (4) or pure bf16 (2)
    compute_bytes: int  # per parameter / activation value in the forward pass
    states: float  # bytes a GPU holds for weights, gradients and Adam without offload
    transient: float  # unsharded parameters and gradients, activations, logits
    host_rank0: float  # rank 0's full model in the master dtype at load (and gathered at save); no other rank's
    host_offload: float  # the node's host memory for the offloaded shards (all ranks)
    host_rank: float = 0.0  # every rank's own process memory and its copy of the encoded training data

    @property
    def per_gpu(self) -> float:
        """Bytes a GPU needs without offload, with the allocator's overhead and the fixed reserve."""
        return (self.states + self.transient) * FRAGMENTATION + FIXED_RESERVE_GIB * GIB

    @property
    def per_gpu_offloaded(self) -> float:
        return self.transient * FRAGMENTATION + FIXED_RESERVE_GIB * GIB

    def fits(self, gpu_bytes: float) -> bool:
        return self.per_gpu <= gpu_bytes

    def host(self, offload: bool) -> float:
        """The node's host memory at its peak: rank 0's model, each rank's process and data, the offloaded
        shards."""
        return self.host_rank0 + self.gpus * self.host_rank + (self.host_offload if offload else 0.0)


def precision(train: dict, gpus: int) -> tuple[int, int]:
    """(master bytes, compute bytes) a parameter: see the module doc."""
    dtype, mixed = train.get("dtype", "fp32"), train.get("mixed_precision", "no") == "bf16"
    if dtype == "fp32":
        return 4, 2 if mixed else 4
    return (4 if gpus > 1 else 2), 2


def shape(params: int) -> tuple[int, int]:
    """(hidden size, layers) of a decoder with `params` non-embedding parameters: 12 L h^2 with h = ASPECT L."""
    hidden = (params * ASPECT / 12) ** (1 / 3)
    return int(hidden), max(1, round(hidden / ASPECT))


def plan(params: int, train: dict, gpus: int, vocab: int = LOGIT_VOCAB, hidden: int | None = None,
         layers: int | None = None, data_tokens: float = 0.0) -> MemoryPlan:
    """The memory plan of training `params` with `train` on `gpus` GPUs (1: one process, no sharding); the
    model's hidden size and layers where known (else `shape`), `vocab` the width of its output (a PRM's: 1),
    `data_tokens` the tokens of the training set (each rank holds it encoded)."""
    world = max(1, gpus)
    master, compute = precision(train, world)
    if hidden is None or layers is None:
        hidden, layers = shape(params)
    tokens = int(train.get("micro_batch_size") or train["batch_size"] // world) * int(train.get("max_length", 256))
    if train.get("gradient_checkpointing"):  # each layer's input kept, one layer recomputed at a time
        activations = tokens * hidden * (layers * compute + ACTIVATION_BYTES * compute / 2)
    else:
        activations = tokens * hidden * layers * ACTIVATION_BYTES * compute / 2
    logits = tokens * vocab * (compute + 8)
    unsharded = UNSHARDED_SHARE * params * compute if world > 1 else 0.0
    return MemoryPlan(gpus=world, master_bytes=master, compute_bytes=compute, states=4 * master * params / world,
                      transient=unsharded + activations + logits, host_rank0=master * params,
                      host_offload=OFFLOAD_HOST_BYTES * params,
                      host_rank=RANK_PROCESS_GIB * GIB + DATA_HOST_BYTES_PER_TOKEN * data_tokens)


def use_offload(train: dict, memory: MemoryPlan, gpu_bytes: float | None, oom_before: bool = False) -> bool:
    """`train.offload`: true or false as given; `auto`: offload when the plan does not fit the GPU (unknown GPU
    memory: it does not), or when an earlier attempt of this job ran out of GPU memory."""
    offload = train.get("offload", False)
    if offload != "auto":
        return bool(offload)
    if memory.gpus < 2:
        return False  # offload is FSDP's: one process keeps everything on its device
    return oom_before or gpu_bytes is None or not memory.fits(gpu_bytes)


def offload_step_seconds(params: int, train: dict, gpus: int, pcie_gbps: float,
                         host_gbps: float) -> tuple[float, float]:
    """(transfer, CPU Adam) seconds of one offloaded optimizer step: every micro-step moves each rank's shard up
    twice (forward, backward) and its gradients down over that GPU's PCIe link (overlapping compute at best), then
    the CPU Adam step moves all weights, gradients and moments through the node's memory (shared by the ranks)."""
    micro = int(train.get("micro_batch_size") or train["batch_size"] // gpus)
    micro_steps = math.ceil(int(train["batch_size"]) / (micro * gpus))
    transfer = micro_steps * OFFLOAD_TRANSFER_BYTES * params / gpus / (pcie_gbps * 1e9)
    return transfer, ADAM_HOST_TRAFFIC * params / (host_gbps * 1e9)


def oom_marker(out_dir: str | Path) -> Path:
    """Beside the output (kept by Snakemake when it removes a failed job's output): a rank that ran out of GPU
    memory writes it, and `auto` offloads on the next attempt."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.gpu-oom"


def threads_per_rank(threads: int, local_ranks: int) -> int:
    """CPU threads of each of the job's processes: the job's CPUs shared among its ranks (8 ranks each taking all
    64 CPUs would oversubscribe the node during a CPU Adam step)."""
    return max(1, int(threads) // max(1, int(local_ranks)))
