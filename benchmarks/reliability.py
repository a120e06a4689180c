"""Kill jobs of the smallest study with SIGKILL, resume, and check the results are those of an uninterrupted run.

    python benchmarks/reliability.py [--config config/ci.yaml] [--kills 6] [--shard-size 4] [--cores 2]

1. An uninterrupted `snakemake` run of the config (shard_size set to --shard-size) in a fresh work dir.
2. The same config in a second work dir, run again and again: each time generate jobs have written 1-4 new
   shards (drawn with a fixed seed), the running generate job is killed with SIGKILL. Odd kills take the job
   only (as the OOM killer would; Snakemake reports the failure and stops), even kills the whole Snakemake
   process tree (a lost node; the rerun first needs `snakemake --unlock`, and every run passes
   `--rerun-incomplete` for a job killed just after writing its output). After --kills kills the run is let
   finish.
3. Every result file (JSONL, CSV, Markdown; JSON without wall-clock fields) of both dirs is compared byte for
   byte; shards written by killed jobs are counted on disk, shards reused and computed by the jobs that
   finished from their logs.

Writes benchmarks/results/reliability.{json,md}; prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPARED = (".jsonl", ".csv", ".md", ".json")


def snakemake(workdir: Path, config: Path, cores: str, *args) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
            "--configfile", str(config), "--cores", cores, *args]


def shards_on_disk(workdir: Path) -> set[Path]:
    return set((workdir / "results" / "generations").rglob("*.shards/shard-*.jsonl"))


def run_with_a_kill(cmd: list[str], workdir: Path, whole_tree: bool, after: int, timeout: float = 1800):
    """Run `cmd` until generate jobs have written `after` new shards, then SIGKILL; return (what happened,
    the number of new shards on disk)."""
    before = shards_on_disk(workdir)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + timeout
    while proc.poll() is None and time.time() < deadline:
        if len(shards_on_disk(workdir) - before) >= after:
            tree = [psutil.Process(proc.pid)] + psutil.Process(proc.pid).children(recursive=True)
            jobs = [p for p in tree if "generate.py" in " ".join(p.cmdline())]
            if jobs:
                for p in tree if whole_tree else jobs:
                    p.send_signal(signal.SIGKILL)
                proc.wait()
                what = "killed snakemake and its jobs" if whole_tree else "killed a generate job"
                return what, len(shards_on_disk(workdir) - before)
        time.sleep(0.05)
    proc.wait()
    return "finished", 0


def shard_counts(results: Path) -> dict[str, int]:
    """Shards reused and computed by the generate jobs that finished (a killed job's log is replaced when the
    job is rerun, so what killed attempts computed is counted from the disk instead)."""
    reused = computed = nothing_left = 0
    for log in (results / "logs" / "generate").glob("*.log"):
        for r, c in re.findall(r"(\d+) reused from an interrupted run, (\d+) computed", log.read_text()):
            reused, computed = reused + int(r), computed + int(c)
            nothing_left += int(r) > 0 and int(c) == 0  # killed after its last shard, maybe after its output
    return {"reused": reused, "computed": computed, "reruns_with_nothing_left": nothing_left}


def comparable(path: Path) -> bytes:
    """A result file's bytes; JSON without its wall-clock fields (training summaries record seconds taken)."""
    if path.suffix != ".json":
        return path.read_bytes()
    def drop(o):
        return {k: drop(v) for k, v in o.items() if k != "seconds"} if isinstance(o, dict) else o

    return json.dumps(drop(json.loads(path.read_text())), sort_keys=True).encode()


def result_files(results: Path) -> dict[str, bytes]:
    skip = ("logs", "benchmarks")  # timings differ from run to run by nature
    return {str(p.relative_to(results)): comparable(p) for p in results.rglob("*")
            if p.is_file() and p.suffix in COMPARED and p.relative_to(results).parts[0] not in skip}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "config" / "ci.yaml"))
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--shard-size", type=int, default=4)
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()

    base = Path(tempfile.mkdtemp(prefix="infscale-reliability-"))
    config = yaml.safe_load(Path(args.config).read_text())
    config["shard_size"] = args.shard_size
    config_path = base / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    clean, chaos = base / "uninterrupted", base / "killed"
    start = time.time()
    subprocess.run(snakemake(clean, config_path, args.cores), check=True, capture_output=True)
    clean_s = time.time() - start

    rng, events, written_by_killed, start = random.Random(0), [], 0, time.time()
    for k in range(args.kills):
        whole_tree = k % 2 == 1
        command = snakemake(chaos, config_path, args.cores, "--rerun-incomplete")
        what, written = run_with_a_kill(command, chaos, whole_tree, after=rng.randint(1, 4))
        events.append(what)
        written_by_killed += written
        if whole_tree:
            subprocess.run(snakemake(chaos, config_path, args.cores, "--unlock"), check=True, capture_output=True)
        if what == "finished":
            break
    final = subprocess.run(snakemake(chaos, config_path, args.cores, "--rerun-incomplete"), capture_output=True,
                           text=True)
    if final.returncode != 0:
        sys.exit(f"the resumed run failed:\n{final.stderr[-3000:]}")
    chaos_s = time.time() - start

    a, b = result_files(clean / "results"), result_files(chaos / "results")
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    counts = shard_counts(chaos / "results")
    total_shards = shard_counts(clean / "results")["computed"]
    report = {
        "config": Path(args.config).name, "shard_size": args.shard_size, "cores": args.cores,
        "kills": [e for e in events if e != "finished"], "files_compared": len(a), "files_differing": differ,
        "identical": not differ, "shards_in_study": total_shards,
        "shards_written_by_killed_jobs": written_by_killed, "shards_reused_by_reruns": counts["reused"],
        "shards_computed": counts["computed"] + written_by_killed,
        "shards_redone": counts["computed"] + written_by_killed - total_shards,
        "reruns_with_nothing_left": counts["reruns_with_nothing_left"],
        "uninterrupted_wall_s": round(clean_s, 1), "killed_and_resumed_wall_s": round(chaos_s, 1),
    }
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "reliability.json").write_text(json.dumps(report, indent=1) + "\n")
    md = "\n".join([
        f"# Reliability: {report['config']}, shard_size {args.shard_size}, {args.cores} cores",
        "",
        f"- Kills: {len(report['kills'])} ({', '.join(report['kills'])})",
        f"- Result files compared with an uninterrupted run: {report['files_compared']}; "
        f"differing: {len(differ)} {'(identical)' if not differ else differ}",
        f"- Shards in the study: {total_shards}; written by jobs before they were killed: {written_by_killed}; "
        f"reused by their reruns: {counts['reused']}; computed across all attempts: {report['shards_computed']} "
        f"(finished shards computed twice: {report['shards_redone']}; the shard in flight at each kill is lost); "
        f"reruns that found every shard done (killed after their last shard): {report['reruns_with_nothing_left']}",
        f"- Wall time: uninterrupted {report['uninterrupted_wall_s']} s; killed and resumed "
        f"{report['killed_and_resumed_wall_s']} s (includes model reloads and the reruns of killed non-generate "
        "jobs, which restart from scratch)",
        "",
    ])
    (out / "reliability.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
