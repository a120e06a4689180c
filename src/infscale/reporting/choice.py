"""The compute-optimal choice (docs/design.md, "Compute-optimal choice"): given a fixed inference FLOPs budget per
problem, which configuration (model, strategy, aggregation, n) of a study solves the most problems.

A configuration is one measured point of a seed summary: its cost is the figures' x (`report.x`, mean over seeds)
and its error the mean over seeds. Greedy is one configuration per model (n = 1; its rows repeat one value under
every aggregation, and it keeps the label the figures give it: majority when present). Per data set and subset:
  frontier   the configurations no cheaper-or-equal one matches or beats (a step function of FLOPs);
  choice     per budget of a 12-point log grid over the data set's measured FLOPs, the lowest error among the
             configurations that cost at most the budget, and the runner-up: the best one under the same budget
             whose model or strategy differs from the winner's (another n or vote of the same model and strategy
             answers no different "which model, which strategy");
  intervals  the winner's error and the lead (runner-up's error minus the winner's) on the claims' paired
             bootstrap over problems and seeds (evaluation.resampling, same draws and seed), for the configurations
             chosen on the point estimates.
Ties go to the cheaper configuration, then the smaller model, then the strategy order of core.config.STRATEGIES,
then by name: the same inputs give the same table.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.lines import Line2D

from infscale.core.config import STRATEGIES
from infscale.core.io import write_text
from infscale.evaluation.resampling import ProblemBootstrap, interval
from infscale.reporting.plotting import STRATEGY_COLORS, STRATEGY_LABELS, _new_figure, save_figure, x_label
from infscale.reporting.report import PathLike, atomic_write_csv, seed_summary
from infscale.reporting.scaling import default_budgets

BUDGET_POINTS = 12
CONFIG_KEYS = ["model", "strategy", "aggregation", "n"]
RUNNER_UP = [f"runner_up_{k}" for k in (*CONFIG_KEYS, "flops", "error")]
COLUMNS = ["dataset", "subset", "budget_flops", *CONFIG_KEYS, "params", "flops", "error", "error_low",
           "error_high", *RUNNER_UP, "lead", "lead_low", "lead_high", "lead_significant"]
SUBSETS = ("all", "easy", "hard")
_TIE = 1e-12  # errors closer than this are equal (means of 0/1 outcomes computed in different orders)
_REL_TOL = 1e-9  # a budget built by exp(log(x)) must still afford x itself


def configurations(summary: pd.DataFrame, x: str) -> pd.DataFrame:
    """One row per (dataset, subset, model, strategy, aggregation, n) of a seed summary: params, `flops` (the
    summary's `x`) and `error` (mean over seeds), greedy once per model. Unknown columns are ignored."""
    if x not in summary.columns:
        raise ValueError(f"configurations: the summary has no FLOPs column {x!r}")
    s = summary
    greedy = s["strategy"] == "greedy"
    if greedy.any():  # one greedy point: the aggregation the figures draw (majority when present)
        aggs = set(s.loc[greedy, "aggregation"])
        keep = "majority" if "majority" in aggs else sorted(aggs)[0]
        s = s[~greedy | (s["aggregation"] == keep)]
    out = s[["dataset", "subset", *CONFIG_KEYS, "params"]].copy()
    out["flops"] = s[x].astype(float).to_numpy()
    out["error"] = s["error_mean"].astype(float).to_numpy()
    out = out[np.isfinite(out["flops"]) & np.isfinite(out["error"])]
    return order(out).reset_index(drop=True)


def order(configs: pd.DataFrame) -> pd.DataFrame:
    """The configurations best first: lowest error (to _TIE), then cheaper, smaller model, strategy order, name."""
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    keys = pd.DataFrame({
        "e": np.round(configs["error"].to_numpy(float) / _TIE) * _TIE, "f": configs["flops"].to_numpy(float),
        "p": configs["params"].to_numpy(float), "r": configs["strategy"].map(lambda v: rank.get(v, len(rank))),
        "s": configs["strategy"].astype(str), "a": configs["aggregation"].astype(str),
        "n": configs["n"].to_numpy(int), "m": configs["model"].astype(str)}, index=configs.index)
    return configs.loc[keys.sort_values(list(keys.columns), kind="stable").index]


def frontier(configs: pd.DataFrame) -> pd.Series:
    """Whether each configuration (of one data set and subset) is on the Pareto frontier of error against FLOPs:
    no other costs at most as much with at most its error (of equal ones, the first in `order` is on it)."""
    if configs[["dataset", "subset"]].drop_duplicates().shape[0] > 1:
        raise ValueError("frontier: configurations of several data sets or subsets; select one first")
    ranked = order(configs)
    by_cost = ranked.loc[ranked["flops"].sort_values(kind="stable").index]  # cheapest first, ties best first
    on, best = pd.Series(False, index=configs.index), np.inf
    for i, e in zip(by_cost.index, by_cost["error"]):
        if e < best - _TIE:
            on[i], best = True, e
    return on


def budgets(configs: pd.DataFrame, points: int = BUDGET_POINTS) -> np.ndarray:
    """The budget grid of a data set: `points` log-spaced from its cheapest configuration to its dearest (one
    budget when they all cost the same)."""
    return np.unique(default_budgets(configs["flops"].to_numpy(float), points))


def affordable(configs: pd.DataFrame, budget: float) -> pd.DataFrame:
    return configs[configs["flops"] <= budget * (1 + _REL_TOL)]


def pick(configs: pd.DataFrame, budget: float) -> tuple[pd.Series | None, pd.Series | None]:
    """(winner, runner-up) under a budget: the best affordable configuration, and the best affordable one whose
    model or strategy differs from the winner's; None where there is none."""
    ok = order(affordable(configs, budget))
    if ok.empty:
        return None, None
    win = ok.iloc[0]
    other = ok[(ok["model"] != win["model"]) | (ok["strategy"] != win["strategy"])]
    return win, (other.iloc[0] if not other.empty else None)


def choose(configs: pd.DataFrame, grid: np.ndarray) -> pd.DataFrame:
    """Per budget of `grid`, the winner and runner-up of one data set and subset (point estimates only); a budget
    nothing fits under (a subset whose cheapest configuration costs more) has no row."""
    rows = []
    for c in grid:
        win, ru = pick(configs, c)
        if win is None:
            continue
        row = {"dataset": win["dataset"], "subset": win["subset"], "budget_flops": float(c),
               **{k: win[k] for k in (*CONFIG_KEYS, "params", "flops", "error")}}
        for k in (*CONFIG_KEYS, "flops", "error"):
            row[f"runner_up_{k}"] = ru[k] if ru is not None else None
        rows.append(row)
    return pd.DataFrame(rows)


def config_draws(boot: ProblemBootstrap, dataset: str, subset: str, model: str, strategy: str, aggregation: str,
                 n: int) -> np.ndarray:
    """The error of one configuration per bootstrap draw (row 0 the plain estimate), shape (1 + draws,)."""
    ns, err = boot.curve(dataset, model, strategy, aggregation, subset)
    hit = np.nonzero(ns == n)[0]
    if len(hit) == 0:
        raise ValueError(f"no per-problem outcomes for {dataset} {model} {strategy} {aggregation} n={n} "
                         f"({subset} problems): the metrics have a point the .problems.csv files lack")
    return err[:, hit[0]]


def add_intervals(table: pd.DataFrame, boot: ProblemBootstrap, level: float = 0.95) -> pd.DataFrame:
    """error_low/high of each winner, and lead, lead_low/high, lead_significant (the lead's interval excludes 0)
    from the same paired draws; the point estimates stay the metrics' means."""
    out = table.copy()
    cols = {k: [] for k in ("error_low", "error_high", "lead", "lead_low", "lead_high", "lead_significant")}
    for _, r in out.iterrows():
        w = config_draws(boot, r["dataset"], r["subset"], *(r[k] for k in CONFIG_KEYS))
        _, lo, hi = interval(w, level)
        cols["error_low"].append(lo)
        cols["error_high"].append(hi)
        if pd.isna(r["runner_up_model"]):
            for k, v in (("lead", np.nan), ("lead_low", np.nan), ("lead_high", np.nan), ("lead_significant", False)):
                cols[k].append(v)
            continue
        u = config_draws(boot, r["dataset"], r["subset"], *(r[f"runner_up_{k}"] for k in CONFIG_KEYS))
        _, llo, lhi = interval(u - w, level)
        cols["lead"].append(float(r["runner_up_error"] - r["error"]))
        cols["lead_low"].append(llo)
        cols["lead_high"].append(lhi)
        cols["lead_significant"].append(bool(llo > 0 or lhi < 0))
    for k, v in cols.items():
        out[k] = v
    return out


def compute_optimal_choice(metrics: pd.DataFrame, problems: pd.DataFrame, x: str = "policy_flops",
                           draws: int = 1000, seed: int = 0, points: int = BUDGET_POINTS) -> pd.DataFrame:
    """The answer table of a study: per data set and subset (all, then easy and hard where the problems have
    levels), per budget of the data set's grid (over its `all` configurations, so subsets line up), the winner,
    its interval, the runner-up and the lead. `metrics` as load_metrics returns them, `problems` the per-problem
    outcomes (claims.load_problems)."""
    configs = configurations(seed_summary(metrics, x=x), x)
    boot = ProblemBootstrap(problems, draws=draws, seed=seed)
    parts = []
    for ds in sorted(configs["dataset"].unique()):
        c = configs[configs["dataset"] == ds]
        grid = budgets(c[c["subset"] == "all"], points)
        for subset in [s for s in SUBSETS if s in set(c["subset"])]:
            t = choose(c[c["subset"] == subset], grid)
            if not t.empty:
                parts.append(add_intervals(t, boot))
    if not parts:
        return pd.DataFrame(columns=COLUMNS)
    out = pd.concat(parts, ignore_index=True)[COLUMNS]
    out["runner_up_n"] = out["runner_up_n"].astype("Int64")  # empty where there is no runner-up
    return out


# ------------------------------------------------------------------------------------------------ Markdown


def _pct(v: float) -> str:
    return "" if pd.isna(v) else f"{100 * v:.1f}%"


def _config(model: object, strategy: object, aggregation: object, n: object) -> str:
    if pd.isna(model):
        return "none"
    return f"{model} {strategy}" + ("" if strategy == "greedy" else f" {aggregation} n={int(n)}")


def to_markdown(table: pd.DataFrame, x: str = "policy_flops") -> str:
    """A section per data set and subset: budget (FLOPs, scientific), the winner with its error and 95% interval,
    the runner-up, the lead in points with its interval, and whether it is significant."""
    lines = ["# Compute-optimal choice", "",
             f"Per FLOPs budget per problem (`{x}`): the configuration with the lowest error among those that cost "
             "at most the budget; the runner-up is the best one of another model or strategy. Intervals: 95% "
             "paired bootstrap over problems and seeds.", ""]
    if table.empty:
        return "\n".join(lines + ["No configuration measured.", ""])
    head = ("| budget (FLOPs) | model | strategy | aggregation | n | FLOPs | error [95% CI] | runner-up | "
            "runner-up error | lead, points [95% CI] | significant |")
    for (ds, subset), g in table.groupby(["dataset", "subset"], sort=False):
        lines += [f"## {ds}, {subset} problems", "", head, "|" + "---|" * head.count(" | ") + "---|"]
        for r in g.itertuples(index=False):
            err = f"{_pct(r.error)} [{_pct(r.error_low)}, {_pct(r.error_high)}]"
            lead = ("" if pd.isna(r.lead) else
                    f"{100 * r.lead:+.1f} [{100 * r.lead_low:+.1f}, {100 * r.lead_high:+.1f}]")
            ru = _config(r.runner_up_model, r.runner_up_strategy, r.runner_up_aggregation, r.runner_up_n)
            sig = "" if pd.isna(r.lead) else ("yes" if r.lead_significant else "no")
            lines.append(f"| {r.budget_flops:.2e} | {r.model} | {r.strategy} | {r.aggregation} | {int(r.n)} | "
                         f"{r.flops:.2e} | {err} | {ru} | {_pct(r.runner_up_error)} | {lead} | {sig} |")
        lines.append("")
    for ds, g in table.groupby("dataset", sort=False):
        lines += by_difficulty(g, ds)
    return "\n".join(lines)


def by_difficulty(table: pd.DataFrame, dataset: str) -> list[str]:
    """Markdown lines: the winner per budget on all, easy and hard problems side by side (nothing without
    subsets); `*` marks a winner whose lead is significant."""
    subsets = [s for s in SUBSETS if s in set(table["subset"])]
    if subsets == ["all"]:
        return []
    cell = {(r.subset, r.budget_flops): _config(r.model, r.strategy, r.aggregation, r.n)
            + ("*" if r.lead_significant else "") for r in table.itertuples(index=False)}
    lines = [f"## {dataset}: does the choice change with difficulty?", "",
             "| budget (FLOPs) | " + " | ".join(subsets) + " |", "|---|" + "---|" * len(subsets)]
    for c in sorted(set(table["budget_flops"])):
        lines.append(f"| {c:.2e} | " + " | ".join(cell.get((s, c), "none fits") for s in subsets) + " |")
    return lines + ["", "`*`: the lead over the runner-up is significant (95% interval excludes 0).", ""]


def write_choice(table: pd.DataFrame, csv: PathLike, md: PathLike, x: str = "policy_flops") -> None:
    atomic_write_csv(table, csv)
    write_text(md, to_markdown(table, x))


def frontier_table(metrics: pd.DataFrame, dataset: str, x: str = "policy_flops", subset: str = "all") -> pd.DataFrame:
    """Every configuration of one data set and subset, with `on_frontier` (the figure's numbers)."""
    c = configurations(seed_summary(metrics, x=x), x)
    c = c[(c["dataset"] == dataset) & (c["subset"] == subset)]
    if c.empty:
        raise ValueError(f"no metrics rows for dataset {dataset!r} ({subset} problems)")
    c = c.assign(on_frontier=frontier(c))
    return c.sort_values(["flops", "error"], kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ the figure

MARKERS = "os^Dvp<>hX"


def strategy_colors(strategies) -> dict[str, object]:
    """The figures' colour of each strategy (greedy black); a strategy they do not know gets the next free one."""
    known = {"greedy": "black", **STRATEGY_COLORS}
    spare = [c for c in colormaps["tab10"].colors if c not in known.values()]
    out, k = {}, 0
    for s in strategies:
        if s in known:
            out[s] = known[s]
        else:
            out[s], k = spare[k % len(spare)], k + 1
    return out


def plot_frontier(configs: pd.DataFrame, png: PathLike, pdf: PathLike, x: str = "policy_flops", *,
                  grid: np.ndarray | None = None, source: str = "") -> None:
    """Error (%) against FLOPs (log x) of every configuration of one data set and subset (frontier_table's rows):
    colour = strategy, marker = model size, the Pareto frontier as a step line, the budget grid as marks on top."""
    rank = {s: i for i, s in enumerate(STRATEGIES)}
    strategies = sorted(set(configs["strategy"]), key=lambda s: (rank.get(s, len(rank)), s))
    models = configs.groupby("model")["params"].first().sort_values(kind="stable")
    color, marker = strategy_colors(strategies), {m: MARKERS[i % len(MARKERS)] for i, m in enumerate(models.index)}
    fig, (ax,) = _new_figure(1)
    for (m, s), d in configs.groupby(["model", "strategy"], sort=False):
        ax.scatter(d["flops"], 100 * d["error"], color=color[s], marker=marker[m], s=28, alpha=0.75, lw=0)
    f = configs[configs["on_frontier"]].sort_values("flops")
    ax.step(np.append(f["flops"], configs["flops"].max()), 100 * np.append(f["error"], f["error"].iloc[-1]),
            where="post", color="0.2", lw=1.2, zorder=4)
    ax.scatter(f["flops"], 100 * f["error"], facecolor="none", edgecolor="black", s=70, lw=0.8, zorder=5)
    if grid is not None:  # the table's budgets, as marks along the top
        ax.plot(grid, np.full(len(grid), 0.995), transform=ax.get_xaxis_transform(), ls="", marker="v", ms=4,
                color="0.4", clip_on=False)
    handles = [Line2D([], [], ls="", marker="o", color=color[s], label=STRATEGY_LABELS.get(s, s)) for s in strategies]
    handles += [Line2D([], [], ls="", marker=marker[m], color="0.4", label=f"{m} (N = {p:.3g})")
                for m, p in models.items()]
    handles += [Line2D([], [], color="0.2", lw=1.2, marker="o", mfc="none", mec="black", label="Pareto frontier")]
    ax.legend(handles=handles, fontsize=7, ncols=2)
    ax.set(xscale="log", xlabel=x_label(x), ylabel="Error rate (%)")
    ax.grid(True, which="both", alpha=0.3)
    ds, subset = configs["dataset"].iloc[0], configs["subset"].iloc[0]
    title = f"{ds}: compute-optimal choice, every configuration ({subset} problems)"
    ax.set_title("colour: strategy, marker: model size; triangles on top: the table's budgets", fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, png, pdf, title, source)
