"""Paper-style tables from a seed_summary: Table 4 (accuracy per strategy/aggregation at each budget),
Table 1 (REBASE, and beam search and DVTS where they ran, at a small budget against sampling at a large one) and
Table 3 (code: sampling and REBASE pass rates and FLOPs side by side at each budget)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from infscale.core.config import STRATEGIES
from infscale.evaluation.aggregation import AGGREGATIONS

TABLE4_COLUMNS = ["dataset", "model", "params", "strategy", "samples", "flops", "flops_per_sample", *AGGREGATIONS]
TABLE1_COLUMNS = ["dataset", "model", "params", "strategy", "samples", "flops", "accuracy"]
_ORDER = {s: i for i, s in enumerate(STRATEGIES)}


def table4(summary: pd.DataFrame, x: str = "policy_flops",
           strategies: Sequence[str] = ("greedy", "sampling"),
           ns: Sequence[int] | None = None) -> pd.DataFrame:
    """Rows per (dataset, model, strategy, n) on subset "all": samples, FLOPs per question (mean over
    seeds of `x`) and per sample (FLOPs / n: constant over n for sampling in the paper's convention), and
    accuracy in % (mean over seeds) under each aggregation as a column."""
    s = summary[(summary["subset"] == "all") & summary["strategy"].isin(list(strategies))]
    if ns is not None:
        s = s[s["n"].isin(list(ns))]
    if s.empty:
        return pd.DataFrame(columns=TABLE4_COLUMNS)
    keys = ["dataset", "model", "params", "strategy", "n"]
    acc = s.assign(acc=100 * s["accuracy_mean"]).pivot_table(
        index=keys, columns="aggregation", values="acc", aggfunc="first")
    flops = s.groupby(keys)[x].mean()  # equal across aggregations; mean is a no-op
    out = acc.reindex(columns=list(AGGREGATIONS)).join(flops.rename("flops")).reset_index()
    out = out.rename(columns={"n": "samples"})
    out["flops_per_sample"] = out["flops"] / out["samples"]
    out["_o"] = out["strategy"].map(_ORDER).fillna(9)
    out = out.sort_values(["dataset", "params", "model", "_o", "samples"]).drop(columns="_o")
    out.columns.name = None
    return out[TABLE4_COLUMNS].reset_index(drop=True)


TABLE1_SEARCHES = ("rebase", "beam_search", "dvts")  # each at a small budget (config report.table1.<s>_budget)


def table1(summary: pd.DataFrame, x: str = "policy_flops", aggregation: str = "weighted_majority",
           sampling_n: int | None = None, rebase_n: int | None = None, beam_search_n: int | None = None,
           dvts_n: int | None = None) -> pd.DataFrame:
    """Per (dataset, model): sampling at `sampling_n` (default: its largest n), then REBASE, beam search and DVTS,
    those that ran, each at its `<strategy>_n` (default: its smallest n). All are fixed before the run (config
    report.table1), never picked by looking at the accuracies. Accuracy in %; subset "all". Empty frame with
    TABLE1_COLUMNS when there is no tree-search row."""
    searched_n = {"rebase": rebase_n, "beam_search": beam_search_n, "dvts": dvts_n}
    s = summary[(summary["subset"] == "all") & (summary["aggregation"] == aggregation)]
    rows = []
    for (ds, model), g in s.groupby(["dataset", "model"], sort=True):
        samp = g[g["strategy"] == "sampling"]
        if samp.empty:
            continue
        picked = [samp[samp["n"] == (sampling_n or samp["n"].max())]]
        for strategy in TABLE1_SEARCHES:
            t = g[g["strategy"] == strategy]
            if not t.empty:
                picked.append(t[t["n"] == (searched_n[strategy] or t["n"].min())])
        if picked[0].empty or all(p.empty for p in picked[1:]):
            continue
        for r in (p.iloc[0] for p in picked if not p.empty):
            rows.append({"dataset": ds, "model": model, "params": int(r["params"]),
                         "strategy": r["strategy"], "samples": int(r["n"]),
                         "flops": float(r[x]), "accuracy": 100 * float(r["accuracy_mean"])})
    return pd.DataFrame(rows, columns=TABLE1_COLUMNS)


TABLE3_COLUMNS = ["dataset", "model", "samples", "sampling_flops", "sampling_pass_rate", "sampling_pass_at_n",
                  "rebase_flops", "rebase_pass_rate"]


def table3(summary: pd.DataFrame, x: str = "policy_flops", aggregation: str = "weighted_majority",
           ns: Sequence[int] | None = None) -> pd.DataFrame:
    """The paper's Table 3 layout, per (dataset, model, n): sampling's FLOPs per question and the pass rate (%) of
    the candidate `aggregation` selects, sampling's pass@n (%, the unbiased estimator: `coverage`), then REBASE's
    FLOPs and pass rate at the same n. Subset "all", means over seeds; a budget one strategy lacks is empty there."""
    s = summary[(summary["subset"] == "all") & (summary["aggregation"] == aggregation)
                & summary["strategy"].isin(["sampling", "rebase"])]
    if ns is not None:
        s = s[s["n"].isin(list(ns))]
    rows = []
    for (ds, model, n), g in s.groupby(["dataset", "model", "n"], sort=True):
        row = {"dataset": ds, "model": model, "samples": int(n)}
        for strategy in ("sampling", "rebase"):
            r = g[g["strategy"] == strategy]
            row[f"{strategy}_flops"] = float(r[x].iloc[0]) if len(r) else float("nan")
            row[f"{strategy}_pass_rate"] = 100 * float(r["accuracy_mean"].iloc[0]) if len(r) else float("nan")
            if strategy == "sampling":
                cover = r["coverage"].iloc[0] if len(r) and "coverage" in r else float("nan")
                row["sampling_pass_at_n"] = 100 * float(cover)
        rows.append(row)
    return pd.DataFrame(rows, columns=TABLE3_COLUMNS)
