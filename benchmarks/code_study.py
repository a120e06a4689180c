"""Pass rates of a config/code.yaml run, sampling and REBASE side by side, with 95% bootstrap intervals over
problems (seeds pooled), for docs/code-study.md:

    python benchmarks/code_study.py <run dir> [aggregation] > benchmarks/results/code_study.md

Reads results/metrics/code/<model>/<strategy>.csv (FLOPs, pass@n) and .problems.csv (each problem's outcome)."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd

DRAWS = 2000


def interval(correct: np.ndarray, problems: np.ndarray, rng) -> tuple[float, float]:
    """95% bootstrap over problems: each draw resamples problem ids, keeping all seeds of a problem."""
    ids = np.unique(problems)
    by_id = {i: correct[problems == i] for i in ids}
    means = [np.concatenate([by_id[i] for i in rng.choice(ids, len(ids))]).mean() for _ in range(DRAWS)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def rows(run: Path, aggregation: str):
    rng = np.random.default_rng(0)
    metrics_dir = run / "results" / "metrics" / "code"
    for model_dir in sorted(metrics_dir.iterdir()):
        for strategy in ("greedy", "sampling", "rebase"):
            m = pd.read_csv(model_dir / f"{strategy}.csv")
            m = m[(m.subset == "all") & (m.aggregation == aggregation)]
            p = pd.read_csv(model_dir / f"{strategy}.problems.csv")
            p = p[(p.kind == "budget") & (p.aggregation == aggregation)]
            for n, g in m.groupby("n"):
                q = p[p.n == n]
                low, high = interval(q.correct.to_numpy(float), q.id.to_numpy(), rng)
                yield {"model": model_dir.name, "strategy": strategy, "n": int(n), "FLOPs": g.policy_flops.mean(),
                       "pass rate %": 100 * q.correct.mean(), "95% CI": f"[{100 * low:.1f}, {100 * high:.1f}]",
                       "pass@n %": 100 * g.coverage.mean(), "seeds": g.seed.nunique()}


def main(run: str, aggregation: str = "weighted_majority") -> None:
    table = pd.DataFrame(list(rows(Path(run), aggregation)))
    print(f"# config/code.yaml: pass rate of the candidate {aggregation} selects (all 64 problems x seeds)\n")
    cols = list(table.columns)
    print("| " + " | ".join(cols) + " |\n|" + "|".join("---" for _ in cols) + "|")
    for r in table.itertuples(index=False):
        cells = [f"{v:.3g}" if isinstance(v, float) and c == "FLOPs" else f"{v:.1f}" if isinstance(v, float) else
                 str(v) for c, v in zip(cols, r)]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(*sys.argv[1:])
