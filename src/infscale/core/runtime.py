"""What every pipeline job needs around its work: output to its log file, threads, GPU devices, timing."""
from __future__ import annotations

import contextlib
import logging
import sys
import time


def script_gpus() -> int:
    """GPUs the running Snakemake script job asked for (its `gpu` resource; 0 outside a script job). Snakemake
    runs a rule's `script:` with its `snakemake` object as a global of `__main__`."""
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    try:
        return int(smk.resources.get("gpu", 0) or 0)
    except (AttributeError, TypeError, ValueError):
        return 0


@contextlib.contextmanager
def job(log_path: str, threads: int | None = None, gpus: int | None = None):
    """Send stdout, stderr and logging to the job's log; on error the traceback lands there too. A job that
    asks for GPUs (`gpus`, default: its Snakemake `gpu` resource) holds that many free devices for its
    duration and sees only them (infscale.core.gpus.claim; SLURM jobs keep the devices SLURM gave them). A job given
    `threads` computes with that many torch threads and logs its numeric state (infscale.core.numerics.check)."""
    from infscale.core import gpus as gpu_devices

    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        logger = logging.getLogger("infscale.job")
        start = time.time()
        try:
            with gpu_devices.claim(script_gpus() if gpus is None else gpus, log=logger):
                if threads:
                    import torch

                    from infscale.core import numerics

                    torch.set_num_threads(threads)
                    numerics.check(logger)  # the kernels, threads and pinning this job computes with
                yield logger
        except BaseException:
            import traceback

            traceback.print_exc(file=log)
            raise
        finally:
            print(f"[infscale] job took {time.time() - start:.1f} s", file=log)
