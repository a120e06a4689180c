"""The smoke run: before a study's days of GPU time, each of its training jobs runs on the resources it asks for,
through the same launcher (FSDP, offload decision, rank-0 loading), two optimizer steps on its longest rows,
and reports its peak GPU memory, peak host memory and seconds a step beside the estimate's figures
(`snakemake --profile profiles/slurm --configfile config/paper.yaml smoke`; docs/paper.md).

A job's longest batch: the `batch_size` rows with the most characters (its inputs cut at `max_length` tokens,
so a full batch is at its widest); the second step is the one timed (the first also builds the optimizer).
Peak GPU memory: the most any rank's caching allocator reserved; peak host memory: the ranks' peak resident
sizes summed (each rank's peak, whenever it came: an upper bound of the node's)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from infscale.core.io import read_jsonl, write_json, write_jsonl, write_text

STEPS = 2
GIB = 2**30
TEXT_KEYS = {"policy": ("question", "solution"), "prm": ("input",)}


def longest_rows(rows: list[dict], n: int, keys: tuple[str, ...]) -> list[dict]:
    """The `n` rows with the most characters in `keys`, each used STEPS times over (a step draws a batch)."""
    chosen = sorted(rows, key=lambda r: -sum(len(str(r.get(k, ""))) for k in keys))[:n]
    return chosen * STEPS


def smoke_spec(spec: dict, work: Path) -> dict:
    """The training spec of a job's smoke run: its longest rows, STEPS steps, no checkpoints, in `work`."""
    train = {k: v for k, v in spec["train"].items() if k not in ("save_steps", "epochs")}
    rows = read_jsonl(spec["data"])
    work.mkdir(parents=True, exist_ok=True)
    write_jsonl(work / "longest.jsonl", longest_rows(rows, int(train["batch_size"]), TEXT_KEYS[spec["kind"]]))
    return {**spec, "data": str(work / "longest.jsonl"), "out": str(work / "model"),
            "train": {**train, "steps": STEPS, "warmup_steps": 0, "smoke": True}}


def smoke_training(spec: dict, gpus: int, out_json: str | Path, estimate: dict | None = None) -> dict:
    """Run a training job's smoke steps on `gpus` GPUs (launch.train, as the job itself) and write its row."""
    from infscale.training.launch import resolve_offload, train

    out_json = Path(out_json)
    work = out_json.parent / f".{out_json.stem}.smoke"
    shutil.rmtree(work, ignore_errors=True)
    smoke = smoke_spec(spec, work)
    offload = None
    if gpus > 1:
        from infscale.core.gpus import device_memory_bytes

        offload = resolve_offload(smoke, gpus, device_memory_bytes())["offload"]
        smoke = {**smoke, "train": {**smoke["train"], "offload": offload}}
    train(smoke, gpus=gpus)
    ranks = [json.loads(p.read_text()) for p in sorted(Path(smoke["out"]).glob("rank*.json"))]
    if not ranks:
        raise RuntimeError(f"smoke run of {out_json.stem} left no rank report in {smoke['out']}")
    gpu_peaks = [r["peak_gpu_bytes"] for r in ranks if r["peak_gpu_bytes"] is not None]
    row = {"job": out_json.stem, "kind": spec["kind"], "gpus": gpus, "ranks": len(ranks),
           "offload": offload if offload is not None else bool(spec["train"].get("offload") is True),
           "peak_gpu_gib": max(gpu_peaks) / GIB if gpu_peaks else None,
           "peak_host_gib": sum(r["peak_host_bytes"] for r in ranks) / GIB,
           "seconds_per_step": ranks[0]["seconds"][-1], "estimate": estimate}
    write_json(out_json, row)
    shutil.rmtree(work, ignore_errors=True)
    return row


def estimate_figures(config: dict, rule: str, name: str) -> dict | None:
    """The estimate's figures for one training job: GiB a GPU (its plan, without offload), GiB of the node's
    host memory, seconds an optimizer step (compute only); None where the estimate cannot size the job (no
    `params`, a training set it has no figures for)."""
    from infscale import estimate as est
    from infscale.training import memory

    try:
        jobs = {(j.rule, j.name): j for j in est.training_jobs(config)}
    except (KeyError, ValueError):
        return None
    job = jobs.get((rule, name))
    if job is None:
        return None
    spec = config["prm"] if rule == "train_prm" else config["models"][name]
    dataset = spec.get("sft_dataset") or spec["dataset"]
    steps = max(1, est._examples(spec["train"], dataset) / int(spec["train"]["batch_size"]))
    return {"gpu_gib": job.plan.per_gpu / memory.GIB, "host_gib": job.plan.host(job.offload) / memory.GIB,
            "seconds_per_step": job.hours["compute"] * 3600 / steps, "offload": job.offload}


def _fmt(x, spec=".1f") -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict]) -> str:
    """The smoke table: measured beside estimated, one row a job."""
    lines = ["| job | GPUs | offload | peak GPU GiB (estimate) | peak host GiB (estimate) | "
             "seconds a step (estimate) |", "|---|---|---|---|---|---|"]
    for r in rows:
        e = r.get("estimate") or {}
        lines.append(f"| {r['job']} | {r['gpus']} | {'yes' if r['offload'] else 'no'} | "
                     f"{_fmt(r['peak_gpu_gib'])} ({_fmt(e.get('gpu_gib'))}) | "
                     f"{_fmt(r['peak_host_gib'])} ({_fmt(e.get('host_gib'))}) | "
                     f"{_fmt(r['seconds_per_step'], '.2f')} ({_fmt(e.get('seconds_per_step'), '.2f')}) |")
    return "\n".join(lines) + "\n"


def write_table(row_files: list[str], out_md: str | Path) -> str:
    rows = [json.loads(Path(f).read_text()) for f in row_files]
    text = ("# Smoke run: two optimizer steps on each training job's longest rows (the second timed)\n\n" + table(rows))
    write_text(out_md, text)
    return text
