"""Memory of a fine-tuning job, computed from its config before it runs: what each GPU and rank 0's host hold under
FSDP (FULL_SHARD over the job's GPUs), and whether the shards must go to CPU memory (`train.offload: auto`). The
training launcher decides with it at job time (GPU memory measured there), the estimate with an assumed GPU.

Precision, as accelerate and the Trainer apply it (accelerate 1.15 `Accelerator.prepare_model`, FSDP and FSDP2
alike): with mixed precision on (`mixed_precision: bf16`, or `dtype: bf16|fp16`, which the launcher turns into
accelerate's `--mixed_precision`), trainable FSDP parameters are upcast to fp32 after sharding, so several GPUs
always keep fp32 master weights, gradients and Adam moments (16 bytes a parameter, sharded) and compute in the
low precision. Only one process with `dtype: bf16` trains in pure bf16 (8 bytes a parameter, no master weights).

Activations and logits use constants measured on CPU with tiny layers of each architecture
(benchmarks/activation_memory.py, results in benchmarks/results/activation_memory.md; tests/test_memory_plan.py
checks these constants against that file), sized by the model's own hidden size and layers where its config is read
(the launcher), else by the shape of a decoder of aspect ratio hidden/layers = 128 (the estimate). A batch is
counted at `micro_batch_size x max_length` tokens, the longest it can be. The GPU's budget is what CUDA lets
torch allocate less NCCL's buffers (`allocatable`); a job that still runs out of GPU memory leaves a marker and its
next attempt offloads (`oom_marker`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

GIB = 2**30
ASPECT = 128  # hidden size / layers of a Llama-style decoder
UNSHARDED_SHARE = 0.1  # parameters unsharded at once in compute precision: root (embeddings), 2 layers, 1 layer's grads
# Bytes kept a token, layer and hidden unit in the forward pass (no checkpointing; with non-reentrant gradient
# checkpointing: each layer's input), by architecture and compute dtype: benchmarks/results/activation_memory.md
# (`python benchmarks/activation_memory.py`, torch 2.13, transformers 5.19). Llama's bf16 figure is above half its
# fp32 one: RMSNorm computes in fp32.
ACTIVATION_BYTES = {  # family: {compute dtype: (no checkpointing, kept with checkpointing)}
    "gpt_neox": {"fp32": (64.12, 4.0), "bf16": (32.09, 2.0)},
    "llama": {"fp32": (83.09, 4.0), "bf16": (45.59, 2.0)},  # Llama-2 / Llemma MLP (intermediate 2.6875 h)
    "llama3": {"fp32": (90.09, 4.0), "bf16": (49.09, 2.0)},  # Llama-3's MLP (3.5 h) and grouped-query attention
    "mistral": {"fp32": (90.09, 4.0), "bf16": (49.09, 2.0)},
}
UNKNOWN_FAMILY = "mistral"  # an architecture not measured: the largest figures
LOGIT_SAVED_BYTES = 4.0  # a token and vocabulary entry, measured: the loss's fp32 log-probabilities (any dtype)
LOGIT_BACKWARD_BYTES = 8  # at the loss's backward: fp32 gradients of the log-probabilities and of the upcast logits
LOGIT_VOCAB = 128_256  # the largest vocabulary of the paper's models (Llama-3), where the model's is not known
# A GPU's budget, from the total nvidia-smi reports (what the launcher measures, core.gpus.device_memory_bytes):
DRIVER_RESERVED_GIB = 0.5  # H100 80GB: nvidia-smi 81,559 MiB (79.65 GiB), torch's "total capacity" 79.15 GiB
CUDA_CONTEXT_GIB = 0.6  # the CUDA context and kernels of a torch process, outside the caching allocator
NCCL_GIB = 2.0  # NCCL's buffers for FSDP's communicator (~1.6 GB for one communicator: NVIDIA/nccl#864) and margin
FRAGMENTATION = 1.05  # the caching allocator's overhead over what is live (expandable segments on: launch.py)
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

    activations: float = 0.0  # of `transient`: what the forward pass keeps for the backward
    logits: float = 0.0  # of `transient`: the loss's log-probabilities and their gradients

    @property
    def per_gpu(self) -> float:
        """Bytes torch allocates on a GPU without offload, with the allocator's overhead."""
        return (self.states + self.transient) * FRAGMENTATION

    @property
    def per_gpu_offloaded(self) -> float:
        return self.transient * FRAGMENTATION

    def fits(self, gpu_bytes: float) -> bool:
        """Whether the plan fits a GPU of `gpu_bytes` (as nvidia-smi reports it) without offload."""
        return self.per_gpu <= allocatable(gpu_bytes)

    def host(self, offload: bool) -> float:
        """The node's host memory at its peak: rank 0's model, each rank's process and data, the offloaded
        shards."""
        return self.host_rank0 + self.gpus * self.host_rank + (self.host_offload if offload else 0.0)


def allocatable(gpu_bytes: float) -> float:
    """What torch's allocator can have of a GPU of `gpu_bytes` (nvidia-smi's total) in a training rank: less the
    driver's reserve, the CUDA context and NCCL's buffers (H100 80GB: 79.65 - 3.1 = 76.5 GiB)."""
    return gpu_bytes - (DRIVER_RESERVED_GIB + CUDA_CONTEXT_GIB + NCCL_GIB) * GIB


def family(name: str | None, intermediate_ratio: float | None = None) -> str:
    """The measured architecture family of a model: from its config's model_type (with its MLP width over its
    hidden size, which tells Llama-3 from Llama-2) or from a hub id; not measured: UNKNOWN_FAMILY."""
    name = (name or "").lower()
    if "neox" in name or "pythia" in name:
        return "gpt_neox"
    if "mistral" in name:
        return "mistral"
    if "llama-3" in name or "llama3" in name or ("llama" in name and (intermediate_ratio or 0) > 3):
        return "llama3"
    if "llama" in name or "llemma" in name:
        return "llama"
    return UNKNOWN_FAMILY



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
         layers: int | None = None, data_tokens: float = 0.0, arch: str = UNKNOWN_FAMILY) -> MemoryPlan:
    """The memory plan of training `params` with `train` on `gpus` GPUs (1: one process, no sharding); the
    model's hidden size and layers where known (else `shape`), `vocab` the width of its output (a PRM's: 1),
    `data_tokens` the tokens of the training set (each rank holds it encoded), `arch` its family (`family`)."""
    world = max(1, gpus)
    master, compute = precision(train, world)
    if hidden is None or layers is None:
        hidden, layers = shape(params)
    tokens = int(train.get("micro_batch_size") or train["batch_size"] // world) * int(train.get("max_length", 256))
    plain, kept = ACTIVATION_BYTES.get(arch, ACTIVATION_BYTES[UNKNOWN_FAMILY])["fp32" if compute == 4 else "bf16"]
    if train.get("gradient_checkpointing"):  # each layer's input kept, one layer recomputed at a time
        activations = tokens * hidden * (layers * kept + plain)
    else:
        activations = tokens * hidden * layers * plain
    logits = tokens * vocab * (LOGIT_SAVED_BYTES + LOGIT_BACKWARD_BYTES)
    unsharded = UNSHARDED_SHARE * params * compute if world > 1 else 0.0
    return MemoryPlan(gpus=world, master_bytes=master, compute_bytes=compute, states=4 * master * params / world,
                      transient=unsharded + activations + logits, host_rank0=master * params,
                      host_offload=OFFLOAD_HOST_BYTES * params,
                      host_rank=RANK_PROCESS_GIB * GIB + DATA_HOST_BYTES_PER_TOKEN * data_tokens,
                      activations=activations, logits=logits)


def micro_batch(train: dict, gpus: int) -> int:
    """Examples a GPU takes a micro-step: `micro_batch_size`, else the global batch split over the GPUs (the
    training jobs' layout, sft.batch_layout, and the estimate's)."""
    return int(train.get("micro_batch_size") or max(1, int(train["batch_size"]) // max(1, gpus)))


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
