"""What every pipeline job needs around its work: output to its log file, threads, timing."""
from __future__ import annotations

import contextlib
import logging
import time


@contextlib.contextmanager
def job(log_path: str, threads: int | None = None):
    """Send stdout, stderr and logging to the job's log; on error the traceback lands there too."""
    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        logging.basicConfig(stream=log, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", force=True)
        if threads:
            import torch

            torch.set_num_threads(threads)
        start = time.time()
        try:
            yield logging.getLogger("infscale.job")
        except BaseException:
            import traceback

            traceback.print_exc(file=log)
            raise
        finally:
            print(f"[infscale] job took {time.time() - start:.1f} s", file=log)
