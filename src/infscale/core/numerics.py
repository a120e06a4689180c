"""Pinned numeric paths: the same bits on every Intel x86-64 machine with AVX2 (docs/reproducibility.md).

PyTorch, MKL and oneDNN each pick their CPU kernels at run time for the processor they find: AVX-512 on one
machine, AVX2 on another. The kernels round differently in the last bit, and training amplifies a last bit into
another policy. The workflow sets the variables below in its own environment before any job starts (rules/common.smk
calls `apply`), so every job, local or submitted to a cluster, inherits them and runs the AVX2 kernels on any machine
that has AVX2. `numerics.pin: false` in the config leaves the environment alone.

Threads are the other half: a parallel reduction splits its sum by thread, so a job's bits also depend on its thread
count. That count is the job's Snakemake threads (config `threads`, 1 by default): Snakemake sets OMP_NUM_THREADS,
MKL_NUM_THREADS and OPENBLAS_NUM_THREADS to it for every script job, and infscale.core.runtime.job calls
torch.set_num_threads with it (Snakemake lowers a job's threads to --cores when fewer are given). This module imports
nothing heavy at load: the workflow plans without torch.
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping

# The variable that marks a pinned environment (for the job's own check, infscale.core.runtime.job).
MARKER = "INFSCALE_NUMERICS"
PINNED = {
    "ATEN_CPU_CAPABILITY": "avx2",  # ATen's own vectorised kernels (elementwise ops, reductions, softmax, norms)
    "MKL_CBWR": "AVX2,STRICT",  # MKL's conditional numerical reproducibility: its AVX2 code path, strictly
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (torch.backends.mkldnn), the newer and the older name
    "DNNL_MAX_CPU_ISA": "AVX2",
    MARKER: "pinned",
}
# What torch.backends.cpu.get_cpu_capability() and MKL (mkl_branch) report under the pin.
PINNED_CAPABILITY = "AVX2"
PINNED_MKL_BRANCH = "AVX2,STRICT"
# MKL's code branches (mkl.h: MKL_CBWR_*), as mkl_cbwr_get reports them
MKL_BRANCHES = {1: "off", 2: "AUTO", 3: "COMPATIBLE", 4: "SSE2", 6: "SSSE3", 7: "SSE4_1", 8: "SSE4_2", 9: "AVX",
                10: "AVX2", 11: "AVX512_MIC", 12: "AVX512", 13: "AVX512_MIC_E1", 14: "AVX512_E1"}
MKL_CBWR_STRICT = 0x10000


def pinned_environment(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `environ` (default: this process's) with the numeric paths pinned: PINNED overrides what the user
    set."""
    return {**(os.environ if environ is None else environ), **PINNED}


def apply(config: dict, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Pin the numeric paths in `environ` (default: os.environ, which every job inherits) unless the config's
    `numerics.pin` is false; returns the variables set (empty when off)."""
    if not config.get("numerics", {}).get("pin", True):
        return {}
    environ = os.environ if environ is None else environ
    environ.update(PINNED)
    return dict(PINNED)


def mkl_branch() -> str | None:
    """The code branch torch's MKL computes with (e.g. "AVX2,STRICT", "off" when MKL_CBWR is unset), asked of MKL
    itself; None where torch has no MKL with that entry point (ARM, macOS, other builds)."""
    import ctypes
    from pathlib import Path

    import torch

    libs = sorted((Path(torch.__file__).parent / "lib").glob("libtorch_cpu.*"))
    try:
        get = ctypes.CDLL(str(libs[0])).mkl_serv_cbwr_get
    except (IndexError, OSError, AttributeError):
        return None
    get.restype, get.argtypes = ctypes.c_int, [ctypes.c_int]
    value = get(-1)  # MKL_CBWR_ALL: the branch and the STRICT flag
    branch = MKL_BRANCHES.get(value & 0xFFFF, str(value & 0xFFFF))
    return branch + (",STRICT" if value & MKL_CBWR_STRICT else "")


def state() -> dict[str, object]:
    """What this process computes with: torch's CPU capability, threads and the pinning variables as set. Imports
    torch (call it in a job that uses torch)."""
    import torch

    out: dict[str, object] = {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "mkl_branch": mkl_branch() if torch.backends.mkl.is_available() else None,
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    out.update({k: os.environ.get(k) for k in PINNED})
    return out


def check(log=None) -> dict[str, object]:
    """Log this job's numeric state; warn when the environment is pinned but torch runs other kernels (a machine
    without AVX2, an ARM machine, or torch imported before the variables were set)."""
    s = state()
    if log is not None:
        log.info("numerics: %s", ", ".join(f"{k}={v}" for k, v in s.items()))
        if s[MARKER] == "pinned" and s["cpu_capability"] != PINNED_CAPABILITY:
            log.warning("numerics: pinned to %s, but torch runs %s kernels: this job's digits will differ from an "
                        "x86-64 machine with AVX2 (docs/reproducibility.md)", PINNED_CAPABILITY, s["cpu_capability"])
        if s[MARKER] == "pinned" and s["mkl_branch"] not in (None, PINNED_MKL_BRANCH):
            log.warning("numerics: pinned to MKL's %s branch, but MKL runs %s: this job's digits will differ from "
                        "an x86-64 machine with AVX2 (docs/reproducibility.md)", PINNED_MKL_BRANCH, s["mkl_branch"])
    return s
