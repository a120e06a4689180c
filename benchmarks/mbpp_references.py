"""Run every MBPP reference solution against its own asserts in the sandbox (infscale.evaluation.execution).

    python benchmarks/mbpp_references.py [--data ../shared/data] [--threads 2] [--timeout 10]

Each task's `code`, then its `test_setup_code`, then its three `test_list` asserts, through `run_programs`
(the pool, --threads at a time), for the 974 tasks of mbpp.jsonl (all four splits) and the 427 of
sanitized-mbpp.json. Writes benchmarks/results/mbpp_references.{json,md}: the tasks that do not pass and why,
and the wall time (with `python /work/shared/tools/calib.py`'s seconds when that file exists, to compare
machines). tests/test_mbpp.py keeps the list of known failures (KNOWN_FAILURES) in step with this run.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from infscale.core.mbpp import ATTRIBUTION, RELEASES, normalise_mbpp, read_release, reference_program
from infscale.evaluation.execution import run_programs, sandbox_workers

ROOT = Path(__file__).resolve().parents[1]
CALIB = Path("/work/shared/tools/calib.py")


def run_release(data: Path, fmt: str, threads: int, timeout: float) -> dict:
    rows = [normalise_mbpp(r, f"{fmt}:{i}") for i, r in enumerate(read_release(data / RELEASES[fmt][0], fmt), 1)]
    start = time.monotonic()
    results = run_programs([reference_program(r) for r in rows], timeout, threads=threads)
    wall = time.monotonic() - start
    failures = {r["task_id"]: {"status": res.status, "detail": res.detail}
                for r, res in zip(rows, results) if not res.passed}
    return {"tasks": len(rows), "passed": sum(res.passed for res in results), "wall_s": round(wall, 1),
            "layers": sorted(set(results[0].layers)), "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = next((p / "shared" / "data" for p in (ROOT.parent, ROOT.parents[1]) if (p / "shared" / "data").is_dir()),
                  ROOT.parent / "shared" / "data")
    parser.add_argument("--data", type=Path, default=shared)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    threads = sandbox_workers(args.threads)
    calib = None
    if CALIB.exists():
        out = subprocess.run([sys.executable, str(CALIB)], capture_output=True, text=True)
        calib = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else None
    runs = {fmt: run_release(args.data, fmt, threads, args.timeout) for fmt in RELEASES}
    report = {"threads": threads, "timeout_s": args.timeout, "calib": calib, "runs": runs}
    results = ROOT / "benchmarks" / "results"
    (results / "mbpp_references.json").write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
    lines = [f"# MBPP reference solutions in the sandbox ({threads} at a time, timeout {args.timeout:g} s)", "",
             f"Data: {ATTRIBUTION}.", "", f"calib.py: {calib}", ""]
    for fmt, run in runs.items():
        lines += [f"## {RELEASES[fmt][0]}: {run['passed']} of {run['tasks']} pass, {run['wall_s']} s",
                  "", f"Layers: {', '.join(run['layers'])}", "", "| task | status | detail |", "|---|---|---|"]
        lines += [f"| {tid} | {f['status']} | {f['detail'].replace('|', '/')} |"
                  for tid, f in sorted(run["failures"].items())]
        lines.append("")
    (results / "mbpp_references.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
