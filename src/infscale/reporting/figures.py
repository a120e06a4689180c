"""Named figures and tables of a study (config `figures:`; the paper's are in config/paper.yaml): each selects
metrics by data set, model, strategy, aggregation and subset and draws one of a few kinds (grid, compute_optimal,
fit, table1, table3, table4). The rule `paper_figure` calls `make_figure` once per name."""
from __future__ import annotations

import pandas as pd

from infscale.reporting.plotting import plot_compute_optimal, plot_grid
from infscale.reporting.report import PathLike, seed_summary, write_table
from infscale.reporting.scaling import PAPER_A, PAPER_B, compute_optimal, fit_optimal_size
from infscale.reporting.tables import table1, table3, table4

SELECT = {"dataset": "datasets", "model": "models", "strategy": "strategies", "aggregation": "aggregations",
          "subset": "subsets"}


def select(summary: pd.DataFrame, spec: dict) -> pd.DataFrame:
    """Rows of a seed summary inside the figure's selection (a key the spec leaves out selects everything)."""
    keep = pd.Series(True, index=summary.index)
    for column, key in SELECT.items():
        if key in spec:
            keep &= summary[column].isin(spec[key])
    out = summary[keep]
    missing = [f"{column} {v}" for column, key in SELECT.items() if key in spec and column != "subset"
               for v in spec[key] if v not in set(out[column])]
    if missing:
        raise ValueError(f"no metrics rows for {', '.join(missing)}")
    return out


def fit_table(s: pd.DataFrame, x: str, aggregation: str) -> pd.DataFrame:
    """The regression log10(C) = a log10(N_opt) + b over the compute-optimal sizes (paper Sec. 4.2), one row."""
    table = compute_optimal(s, x=x, strategy="sampling", aggregation=aggregation, subset="all")
    fit = fit_optimal_size(table)
    opt = table[table["best_model"].notna()]
    sizes = " ".join(str(int(p)) for p in sorted(set(opt["best_params"])))
    return pd.DataFrame([{"dataset": s["dataset"].iloc[0], "x": x, "strategy": "sampling", "aggregation": aggregation,
                          **fit.as_dict(), "optimal_sizes": sizes,
                          "paper_a": PAPER_A, "paper_b": PAPER_B}])


def make_figure(metrics: pd.DataFrame, name: str, spec: dict, *, x: str, csv: PathLike, md: PathLike,
                png: PathLike | None = None, pdf: PathLike | None = None, source: str = "",
                table1_budgets: dict | None = None) -> pd.DataFrame:
    """Draw (grid, compute_optimal) and tabulate one named figure; tables (fit, table1, table4) only tabulate."""
    s = select(seed_summary(metrics, x=x), spec)
    kind, title = spec["kind"], spec.get("title", name)
    aggregation = spec.get("aggregations", ["weighted_majority"])[0]
    if kind in ("grid", "compute_optimal") and (png is None or pdf is None):
        raise ValueError(f"figure {name}: a {kind} figure needs png and pdf outputs")
    if kind == "grid":
        order = {column: spec[key] for column, key in SELECT.items() if key in spec}
        table = plot_grid(s, spec.get("panels", "model"), png, pdf, x=x, order=order, title=title, source=source)
    elif kind == "compute_optimal":
        table = plot_compute_optimal(s, spec["datasets"][0], "sampling", aggregation, png, pdf, x=x, source=source)
    elif kind == "fit":
        table = fit_table(s, x, aggregation)
    elif kind == "table1":
        t1 = table1_budgets or {}
        table = table1(s, x=x, aggregation=aggregation, sampling_n=t1.get("sampling_budget"),
                       rebase_n=t1.get("rebase_budget"), beam_search_n=t1.get("beam_search_budget"),
                       dvts_n=t1.get("dvts_budget"))
    elif kind == "table4":
        table = table4(s, x=x, strategies=spec.get("strategies", ("greedy", "sampling")), ns=spec.get("samples"))
    elif kind == "table3":
        table = table3(s, x=x, aggregation=aggregation, ns=spec.get("samples"))
    else:
        raise ValueError(f"figure {name}: unknown kind {kind!r}")
    write_table(table, csv, md)
    return table
