"""GPU devices for jobs on one workstation: Snakemake counts GPUs (`--resources gpu=N`) but does not say which
device a job gets. A job that asks for k GPUs claims k free device indices, one lock file per index
(`fcntl.flock`, so a crashed job frees its devices), and sees only those through CUDA_VISIBLE_DEVICES.

Inside a SLURM job nothing is claimed: SLURM assigns the devices (`--gpus`/`--gres`) and sets
CUDA_VISIBLE_DEVICES itself, renumbered per job, so lock files shared on the node would collide. Where the user
has set CUDA_VISIBLE_DEVICES by hand, the claim picks among the devices listed there, never beyond them.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

LOCK_DIR_ENV = "INFSCALE_GPU_LOCK_DIR"
COUNT_ENV = "INFSCALE_GPU_COUNT"  # overrides detection (tests, or to share only the first k devices)


def visible_devices(env=os.environ) -> list[str]:
    """Device ids a job may choose from: CUDA_VISIBLE_DEVICES when set, else 0..count-1."""
    listed = env.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and env.get(COUNT_ENV) is None:
        return [d.strip() for d in listed.split(",") if d.strip()]
    return [str(i) for i in range(device_count(env))]


def device_count(env=os.environ) -> int:
    """GPUs on this machine, without initialising CUDA in this process (that would fix its device list
    before CUDA_VISIBLE_DEVICES is set): INFSCALE_GPU_COUNT, else `nvidia-smi --list-gpus`, else 0."""
    if env.get(COUNT_ENV) is not None:
        return int(env[COUNT_ENV])
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=30,
                             check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


MEMORY_ENV = "INFSCALE_GPU_MEMORY_GIB"  # overrides detection (tests, or to plan for a smaller share of the GPU)


def device_memory_bytes(env=os.environ) -> int | None:
    """Memory of the smallest GPU nvidia-smi lists (a SLURM job with device cgroups: its own), without
    initialising CUDA here: INFSCALE_GPU_MEMORY_GIB, else `nvidia-smi --query-gpu=memory.total` (MiB), else
    None."""
    if env.get(MEMORY_ENV) is not None:
        return int(float(env[MEMORY_ENV]) * 2**30)
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    sizes = [int(float(line)) for line in out.split() if line.replace(".", "", 1).isdigit()]
    return min(sizes) * 2**20 if sizes else None


def lock_dir(env=os.environ) -> Path:
    path = Path(env.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / f"infscale-gpu-locks-{os.getuid()}")
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def claim(n: int, env=os.environ, poll_s: float = 2.0, log=None):
    """Hold `n` free devices for the duration of the block and set CUDA_VISIBLE_DEVICES to them in `env`
    (restored afterwards). Yields the claimed ids ([] when n is 0 or inside a SLURM job: nothing is claimed or
    changed). Waits,
    polling, while fewer than n devices are free; fails at once if the machine has fewer than n."""
    if n <= 0 or env.get("SLURM_JOB_ID"):
        yield []
        return
    devices = visible_devices(env)
    if len(devices) < n:
        raise RuntimeError(f"the job asks for {n} GPU(s) but {len(devices)} are visible "
                           f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES')!r}); lower its gpu resource")
    directory = lock_dir(env)
    held: list[tuple[str, object]] = []
    waited = False
    try:
        while True:
            for device in devices:
                if len(held) == n:
                    break
                handle = open(directory / f"gpu{device}.lock", "a")  # noqa: SIM115 (held past this block)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.close()
                    continue
                held.append((device, handle))
            if len(held) == n:
                break
            for _, handle in held:  # all or nothing: never sit on some devices while waiting for others
                handle.close()
            held = []
            if log and not waited:
                log.info("waiting for %d free GPU(s) among %s (locks in %s)", n, devices, directory)
            waited = True
            time.sleep(poll_s)
        ids = [device for device, _ in held]
        previous = env.get("CUDA_VISIBLE_DEVICES")
        env["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        if log:
            log.info("CUDA_VISIBLE_DEVICES=%s", env["CUDA_VISIBLE_DEVICES"])
        try:
            yield ids
        finally:
            if previous is None:
                env.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                env["CUDA_VISIBLE_DEVICES"] = previous
    finally:
        for _, handle in held:
            handle.close()  # closing the file releases its flock
