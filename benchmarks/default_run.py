"""Time the embedded default study end to end and say where the time goes, per rule.

    python benchmarks/default_run.py [--config config.yaml] [--cores 2] [--workdir DIR]

Runs `snakemake --cores N` in a fresh work dir (nothing cached), then reads every job's own timing line
("[infscale] job took X s", written by infscale.core.runtime.job) from results/logs and the greedy accuracies from
the metrics. Writes benchmarks/results/<config-name>.json and .md, copies the run's claims.csv, claims_units.csv and
compute_optimal_choice.md beside them (claims_default.csv ... for config.yaml); prints the Markdown.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def job_times(results: Path) -> dict[str, list[float]]:
    times = defaultdict(list)
    for log in (results / "logs").rglob("*.log"):
        rule = log.relative_to(results / "logs").parts[0].removesuffix(".log")
        for m in re.finditer(r"\[infscale\] job took ([\d.]+) s", log.read_text(errors="replace")):
            times[rule].append(float(m.group(1)))
    return times


def rebase_over_sampling(results: Path) -> list[dict]:
    """Wall time of REBASE at width n over sampling's at n samples, per model and seed, from Snakemake's
    benchmark files. Sampling is generated once at its largest budget N, so its time at n is taken as
    n / N of that run (decoding dominates), scoring included; REBASE's time includes its PRM calls."""
    out = []
    for tsv in sorted((results / "benchmarks" / "generate").glob("*_sampling_n*_seed*.tsv")):
        prefix, big_n, seed = re.match(r"(.+)_sampling_n(\d+)_seed(\d+)\.tsv", tsv.name).groups()
        score = results / "benchmarks" / "score" / tsv.name
        sampling = sum(float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in (tsv, score) if f.exists())
        for rebase in sorted(tsv.parent.glob(f"{prefix}_rebase_n*_seed{seed}.tsv")):
            n = int(re.search(r"_rebase_n(\d+)_", rebase.name).group(1))
            at_n = sampling * n / int(big_n)
            t = float(pd.read_csv(rebase, sep="\t")["s"].iloc[0])
            out.append({"run": f"{prefix} n={n} seed={seed}", "sampling_s": round(at_n, 1), "rebase_s": round(t, 1),
                        "ratio": round(t / at_n, 2)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default=str(ROOT / "config.yaml"))
    ap.add_argument("--cores", default="all")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--calib", default=None, help="seconds of /work/shared/tools/calib.py measured around the run "
                    "(machine speed; shared machines differ 2-3x), recorded with the wall time")
    args = ap.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="infscale-bench-"))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--configfile", args.config,
           "-d", str(workdir), "--cores", args.cores]
    start = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed after {wall:.0f} s:\n{proc.stderr[-3000:]}")
    results = workdir / "results"
    per_rule = {rule: {"jobs": len(t), "sum_s": round(sum(t), 1), "max_s": round(max(t), 1)}
                for rule, t in sorted(job_times(results).items(), key=lambda kv: -sum(kv[1]))}
    metrics = pd.concat(pd.read_csv(p) for p in (results / "metrics").rglob("*.csv")
                        if not p.name.endswith(".problems.csv"))
    greedy = metrics[(metrics.strategy == "greedy") & (metrics.aggregation == "majority")]
    accuracy = {f"{r.model} ({r.subset})": round(r.accuracy, 3) for r in greedy.itertuples()}
    claims = pd.read_csv(results / "claims.csv")[["claim_id", "verdict", "units", "measured"]].to_dict("records")
    sampling = metrics[(metrics.strategy == "sampling") & (metrics.subset == "all")]
    # Accuracy of each aggregation at each budget, mean over seeds: voting and best-of-n against greedy.
    sampling_accuracy = {f"{m} {a}": {int(n): round(v, 3) for n, v in d.groupby("n")["accuracy"].mean().items()}
                         for (m, a), d in sampling.groupby(["model", "aggregation"])}
    quality_csv = results / "tables" / "prm_quality.csv"
    quality_columns = ["verifier", "model", "within_auc_last", "within_auc_min", "ceiling_auc", "pooled_auc_last",
                       "best_of_n_last", "weighted_majority_last", "majority", "oracle"]
    prm_quality = (pd.read_csv(quality_csv)[quality_columns].round(3).to_dict("records")
                   if quality_csv.exists() else [])
    report = {"config": str(Path(args.config).resolve().relative_to(ROOT)), "cores": args.cores,
              "machine": f"{platform.machine()}, {__import__('os').cpu_count()} CPUs, "
                         f"Python {platform.python_version()}",
              "date": time.strftime("%Y-%m-%d %H:%M"), "wall_s": round(wall, 1), "calib_s": args.calib,
              "per_rule": per_rule,
              "greedy_accuracy": accuracy, "sampling_accuracy": sampling_accuracy, "prm_quality": prm_quality,
              "rebase_over_sampling": rebase_over_sampling(results), "claims": claims}
    lines = [f"# {report['config']}: {wall / 60:.1f} min wall on {report['machine']} (--cores {args.cores})"
             + (f", calib {args.calib} s: {wall / float(args.calib):.0f} x calib" if args.calib else ""), "",
             "| rule | jobs | sum of job times (s) | longest job (s) |", "|---|---|---|---|"]
    lines += [f"| {r} | {v['jobs']} | {v['sum_s']} | {v['max_s']} |" for r, v in per_rule.items()]
    lines += ["", "Greedy accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in accuracy.items()), ""]
    budgets = sorted({n for v in sampling_accuracy.values() for n in v})
    lines += ["Sampling accuracy (all problems, mean over seeds) by budget n:", "",
              "| model, aggregation | " + " | ".join(f"n={n}" for n in budgets) + " |",
              "|---|" + "---|" * len(budgets)]
    lines += [f"| {k} | " + " | ".join(f"{v.get(n, float('nan')):.1%}" for n in budgets) + " |"
              for k, v in sampling_accuracy.items()] + [""]
    if prm_quality:
        lines += ["Verifier quality (results/tables/prm_quality.csv; the study's verifier first, then ablations):", "",
                  "| " + " | ".join(prm_quality[0]) + " |", "|---" * len(prm_quality[0]) + "|"]
        lines += ["| " + " | ".join(str(v) for v in r.values()) + " |" for r in prm_quality] + [""]
    if report["rebase_over_sampling"]:
        lines += ["REBASE wall time over sampling's at equal n (sampling + PRM scoring, scaled from its largest run):",
                  "", "| run | sampling (s) | REBASE (s) | ratio |", "|---|---|---|---|"]
        lines += [f"| {r['run']} | {r['sampling_s']:.1f} | {r['rebase_s']:.1f} | {r['ratio']} |"
                  for r in report["rebase_over_sampling"]] + [""]
    lines += ["| claim | verdict | units | measured |", "|---|---|---|---|"]
    lines += [f"| {c['claim_id']} | {c['verdict']} | {c['units']} | {c['measured']} |" for c in claims]
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    name = Path(args.config).stem
    # the run's scorecard and answer table beside its timings (README and docs/default-study.md quote them)
    suffix = "default" if name == "config" else name
    for src, dst in (("claims.csv", f"claims_{suffix}.csv"), ("claims_units.csv", f"claims_units_{suffix}.csv"),
                     ("tables/compute_optimal_choice.md", f"compute_optimal_choice_{suffix}.md")):
        if (results / src).exists():
            shutil.copyfile(results / src, out / dst)
    (out / f"{name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
