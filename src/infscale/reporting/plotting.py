"""Figures: error vs inference FLOPs per strategy (paper Figs. 4-7) and compute-optimal model size
(paper Fig. 1). Uses the object-oriented matplotlib API on the Agg canvas (no pyplot state)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps, colors
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from infscale.core.config import STRATEGIES
from infscale.core.io import atomic_path
from infscale.reporting.report import PathLike
from infscale.reporting.scaling import PAPER_A, PAPER_B, compute_optimal_fit

AGG_LABELS = {"majority": "Majority vote", "weighted_majority": "Weighted majority vote",
              "best_of_n": "Best-of-n"}
AGG_COLORS = {"majority": "tab:blue", "weighted_majority": "tab:orange", "best_of_n": "tab:green"}
STRATEGY_ORDER = [s for s in STRATEGIES if s != "greedy"]  # panels; greedy is a star on each
STRATEGY_LABELS = {"greedy": "Greedy", "sampling": "Sampling", "rebase": "REBASE", "mcts": "MCTS",
                   "beam_search": "Beam search", "dvts": "DVTS"}


def x_label(x: str) -> str:
    what = {"policy_flops": "policy", "total_flops": "policy + PRM",
            "policy_flops_prefix_shared": "policy, prefix-shared", "total_flops_prefix_shared":
            "policy + PRM, prefix-shared"}.get(x, x)
    return f"Inference FLOPs per question ({what})"


def _new_figure(n_panels: int) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(max(5.2, 4.6 * n_panels), 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    fig.get_layout_engine().set(rect=(0, 0.04, 1, 0.96))  # keep room for the source footnote
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, list(axes)


def save_figure(fig: Figure, png: PathLike, pdf: PathLike, title: str, source: str) -> None:
    """Footnote with the source, then PNG (dpi 150) and PDF, each written atomically."""
    for ax in fig.axes:  # log axes over less than a decade label minor ticks too, and they collide
        if ax.get_xscale() == "log":
            ax.xaxis.set_minor_formatter(NullFormatter())
    fig.text(0.005, 0.005, f"source: {source}" if source else "source: unspecified",
             fontsize=6, color="0.4", ha="left", va="bottom")
    for path, fmt, meta in ((png, "png", {"Title": title, "Description": source}),
                            (pdf, "pdf", {"Title": title, "Subject": source})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=150, metadata=meta)
    fig.clear()


def _band(ax: Axes, d: pd.DataFrame, x: str, color: str, label: str, marker: str = "o", **kw: object) -> None:
    """Mean over seeds as a line, min-max over seeds as a shaded band (error in %)."""
    d = d.sort_values(x)
    ax.plot(d[x], 100 * d["error_mean"], marker=marker, ms=3, color=color, label=label, **kw)
    ax.fill_between(d[x], 100 * d["error_min"], 100 * d["error_max"], color=color, alpha=0.2, lw=0)


def _greedy_star(ax: Axes, greedy: pd.DataFrame, x: str) -> None:
    """Greedy decoding as one star, with its min-max over seeds as an error bar."""
    ax.errorbar(greedy[x], 100 * greedy["error_mean"],
                yerr=[100 * (greedy["error_mean"] - greedy["error_min"]),
                      100 * (greedy["error_max"] - greedy["error_mean"])],
                fmt="*", ms=11, color="black", label="Greedy", zorder=5)


def _plotted(d: pd.DataFrame, x: str, panel: str) -> pd.DataFrame:
    cols = ["strategy", "aggregation", "n", "params", x, "n_seeds"]
    out = d[cols].copy()
    for k in ("mean", "min", "max"):
        out[f"error_{k}_pct"] = 100 * d[f"error_{k}"].to_numpy()
    out.insert(0, "panel", panel)
    return out


def _oracle(ax: Axes, d: pd.DataFrame, x: str, panel: str) -> pd.DataFrame:
    """Coverage as a dashed "oracle" curve (error = 1 - coverage, mean over seeds): the error of a perfect
    verifier on the same candidates. `d` is one aggregation's rows (coverage is the same under every one)."""
    d = d.sort_values(x)
    ax.plot(d[x], 100 * (1 - d["coverage"]), ls="--", marker=".", ms=3, color="0.3", label="Oracle (1 - coverage)")
    out = d[["strategy", "n", "params", x, "n_seeds"]].copy()
    out["aggregation"], out["error_mean_pct"] = "oracle", 100 * (1 - d["coverage"]).to_numpy()
    out.insert(0, "panel", panel)
    return out


def _vote_limits(ax: Axes, d: pd.DataFrame, x: str, panel: str) -> list[pd.DataFrame]:
    """The error each vote converges to (Theorems 1-2: metrics column vote_limit, mean over seeds) as a dotted
    horizontal line in the vote's colour."""
    rows = []
    for agg, g in d.dropna(subset=["vote_limit"]).groupby("aggregation", sort=False):
        error = 100 * (1 - float(g["vote_limit"].iloc[0]))  # the same at every n
        theorem = "Thm 1" if agg == "majority" else "Thm 2"
        ax.axhline(error, ls=":", lw=1.2, color=AGG_COLORS.get(agg, "0.5"),
                   label=f"{AGG_LABELS.get(agg, agg)} limit, n→∞ ({theorem})")
        # n: the samples the limit was predicted from (all drawn: the largest budget)
        rows.append(pd.DataFrame([{"panel": panel, "strategy": g["strategy"].iloc[0], "aggregation": f"{agg}_limit",
                                   "n": int(g["n"].max()), "params": g["params"].iloc[0], x: np.nan,
                                   "n_seeds": g["n_seeds"].iloc[0], "error_mean_pct": error}]))
    return rows


def draw_error_vs_flops(summary: pd.DataFrame, dataset: str, model: str, x: str = "policy_flops", *,
                        subset: str = "all") -> tuple[Figure, str, pd.DataFrame]:
    """The figure of plot_error_vs_flops, its title and its numbers, not yet saved."""
    s = summary[(summary["dataset"] == dataset) & (summary["model"] == model)
                & (summary["subset"] == subset)]
    if s.empty:
        raise ValueError(f"no rows for dataset={dataset!r} model={model!r} subset={subset!r}")
    present = set(s["strategy"]) - {"greedy"}
    panels = [p for p in STRATEGY_ORDER if p in present] + sorted(present - set(STRATEGY_ORDER))
    greedy = s[s["strategy"] == "greedy"]
    if not greedy.empty:  # greedy rows repeat one value under every aggregation: draw it once
        agg = "majority" if (greedy["aggregation"] == "majority").any() else greedy["aggregation"].iloc[0]
        greedy = greedy[greedy["aggregation"] == agg]
    fig, axes = _new_figure(max(len(panels), 1))
    rows = []
    for ax, strat in zip(axes, panels or ["greedy"]):
        for agg in [a for a in AGG_LABELS if a in set(s["aggregation"])]:
            d = s[(s["strategy"] == strat) & (s["aggregation"] == agg)]
            if strat != "greedy" and not d.empty:
                _band(ax, d, x, AGG_COLORS[agg], AGG_LABELS[agg])
                rows.append(_plotted(d.sort_values(x), x, strat))
        sampled = s[s["strategy"] == strat]
        if strat == "sampling" and "coverage" in s.columns and sampled["coverage"].notna().any():
            first = sampled[sampled["aggregation"] == sampled["aggregation"].iloc[0]]
            rows.append(_oracle(ax, first, x, strat))
        if strat == "sampling" and "vote_limit" in s.columns:
            rows += _vote_limits(ax, sampled, x, strat)
        if not greedy.empty:
            _greedy_star(ax, greedy, x)
            rows.append(_plotted(greedy, x, strat))
        ax.set_xscale("log")
        ax.set_xlabel(x_label(x))
        ax.set_ylabel("Error rate (%)")
        ax.set_title(STRATEGY_LABELS.get(strat, strat))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    params = int(s["params"].iloc[0])
    title = f"{dataset} / {model} (N = {params:.3g})" + ("" if subset == "all" else f", {subset} problems")
    fig.suptitle(title, fontsize=10)
    return fig, title, pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def plot_error_vs_flops(summary: pd.DataFrame, dataset: str, model: str, png: PathLike,
                        pdf: PathLike, x: str = "policy_flops", *, subset: str = "all",
                        source: str = "") -> pd.DataFrame:
    """One panel per search strategy; one curve per aggregation; greedy as a star on every panel. The sampling
    panel adds the oracle (1 - coverage, dashed) and each vote's limit as n -> infinity (dotted, Theorems 1-2)
    where the metrics carry them.

    Returns the plotted numbers (errors in %), one row per point and panel (aggregation "oracle" and
    "<vote>_limit" for the added lines).
    """
    fig, title, numbers = draw_error_vs_flops(summary, dataset, model, x, subset=subset)
    save_figure(fig, png, pdf, title, source)
    return numbers


def plot_compute_optimal(summary: pd.DataFrame, dataset: str, strategy: str, aggregation: str,
                         png: PathLike, pdf: PathLike, x: str = "policy_flops", *,
                         subset: str = "all", budgets: np.ndarray | None = None,
                         source: str = "") -> pd.DataFrame:
    """Paper Fig. 1: left, error vs FLOPs per model size with stars at the compute-optimal model per
    budget; right, optimal size N_opt vs budget C with the fit log10 C = a log10 N + b.

    Returns the compute_optimal table with fit_a, fit_b, fit_r2, fit_n_points, fit_reason columns
    (scaling.compute_optimal_fit).
    """
    s, table, fit = compute_optimal_fit(summary, dataset, strategy, aggregation, x, subset=subset, budgets=budgets)
    models: dict[str, int] = table.attrs["models"]
    lognorm = colors.LogNorm(min(models.values()), max(models.values()) * 1.0001)
    cmap = colormaps["viridis"]
    color = {m: cmap(0.85 * lognorm(p)) for m, p in models.items()}

    fig, (left, right) = _new_figure(2)
    for m, p in models.items():
        _band(left, s[s["model"] == m], x, color[m], f"{m} (N = {p:.3g})")
    ok = table["best_model"].notna()
    for _, r in table[ok].iterrows():
        left.scatter(r["budget"], 100 * r["best_error"], marker="*", s=140, zorder=5,
                     color=color[r["best_model"]], edgecolor="black", lw=0.5)
    left.scatter([], [], marker="*", s=140, color="white", edgecolor="black", label="compute-optimal")
    left.set(xscale="log", xlabel=x_label(x), ylabel="Error rate (%)",
             title=f"{STRATEGY_LABELS.get(strategy, strategy)} + {AGG_LABELS.get(aggregation, aggregation)}")
    left.legend(fontsize=7)
    left.grid(True, which="both", alpha=0.3)

    t = table[ok]
    right.scatter(t["budget"], t["best_params"], marker="*", s=140, zorder=5,
                  c=[color[m] for m in t["best_model"]], edgecolor="black", lw=0.5,
                  label="optimal model size")
    if np.isfinite(fit.a):
        cs = np.logspace(np.log10(t["budget"].min()), np.log10(t["budget"].max()), 50)
        right.plot(cs, fit.n_opt(cs), "k--", lw=1,
                   label=f"fit: log10 C = {fit.a:.2f} log10 N + {fit.b:.2f} (R² {fit.r2:.2f})\n"
                         f"paper (Pythia/GSM8K): a = {PAPER_A}, b = {PAPER_B}")
    else:
        right.text(0.05, 0.9, f"no fit: {fit.reason}", transform=right.transAxes, fontsize=7)
    right.set(xscale="log", yscale="log", xlabel=x_label(x), ylabel="Optimal model size N (params)",
              title="Optimal model size vs budget")
    right.title.set_fontsize(10)
    left.title.set_fontsize(10)
    right.legend(fontsize=7)
    right.grid(True, which="both", alpha=0.3)
    title = f"{dataset}, subset {subset}: compute-optimal inference ({strategy}, {aggregation})"
    fig.suptitle(title, fontsize=10)
    save_figure(fig, png, pdf, title, source)
    return table


STRATEGY_COLORS = {"sampling": "tab:blue", "rebase": "tab:red", "mcts": "tab:purple", "beam_search": "tab:green",
                   "dvts": "tab:olive"}
STRATEGY_MARKERS = {"beam_search": "D", "dvts": "v"}  # the others: "o"


def _strategy_panel(ax: Axes, s: pd.DataFrame, x: str, strategies: list[str], panel: str) -> list[pd.DataFrame]:
    """Curves of several strategies on one axis (one aggregation), greedy as a star; returns the numbers."""
    rows = []
    for strat in strategies:
        d = s[s["strategy"] == strat]
        if not d.empty:
            _band(ax, d, x, STRATEGY_COLORS.get(strat, "tab:gray"), STRATEGY_LABELS.get(strat, strat),
                  STRATEGY_MARKERS.get(strat, "o"))
            rows.append(_plotted(d.sort_values(x), x, panel))
    greedy = s[s["strategy"] == "greedy"]
    if not greedy.empty:
        _greedy_star(ax, greedy, x)
        rows.append(_plotted(greedy, x, panel))
    ax.set(xscale="log", xlabel=x_label(x), ylabel="Error rate (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return rows


def plot_strategies(summary: pd.DataFrame, dataset: str, model: str, aggregation: str, png: PathLike,
                    pdf: PathLike, x: str = "policy_flops", *, source: str = "") -> pd.DataFrame:
    """Paper Fig. 4-7: sampling, REBASE and MCTS (and beam search, DVTS) of one model under one aggregation, on one
    axis."""
    s = summary[(summary["dataset"] == dataset) & (summary["model"] == model)
                & (summary["aggregation"] == aggregation) & (summary["subset"] == "all")]
    if s.empty:
        raise ValueError(f"no rows for dataset={dataset!r} model={model!r} aggregation={aggregation!r}")
    fig, (ax,) = _new_figure(1)
    rows = _strategy_panel(ax, s, x, STRATEGY_ORDER, "all")
    ax.set_title(AGG_LABELS.get(aggregation, aggregation), fontsize=10)
    title = f"{dataset} / {model} (N = {int(s['params'].iloc[0]):.3g}): strategies at equal compute"
    fig.suptitle(title, fontsize=10)
    save_figure(fig, png, pdf, title, source)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def plot_easy_hard(summary: pd.DataFrame, dataset: str, model: str, aggregation: str, png: PathLike,
                   pdf: PathLike, x: str = "policy_flops", *, strategies=("sampling", "rebase"),
                   source: str = "") -> pd.DataFrame:
    """Paper Fig. 8: REBASE against sampling on easy (levels 1-2) and hard (levels 3-5) problems."""
    s = summary[(summary["dataset"] == dataset) & (summary["model"] == model)
                & (summary["aggregation"] == aggregation)]
    if not {"easy", "hard"} <= set(s["subset"]):
        raise ValueError(f"{dataset!r} has no easy/hard subsets (its problems carry no difficulty level)")
    fig, axes = _new_figure(2)
    rows = []
    for ax, subset in zip(axes, ("easy", "hard")):
        rows += _strategy_panel(ax, s[s["subset"] == subset], x, list(strategies), subset)
        ax.set_title(f"{subset} problems (levels {'1-2' if subset == 'easy' else '3-5'})", fontsize=10)
    title = f"{dataset} / {model}: {AGG_LABELS.get(aggregation, aggregation)} by difficulty"
    fig.suptitle(title, fontsize=10)
    save_figure(fig, png, pdf, title, source)
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


GRID_DIMS = ("dataset", "model", "strategy", "aggregation", "subset")
SHORT_AGG = {"majority": "M.V.", "weighted_majority": "W.M.", "best_of_n": "BoN"}
LINESTYLES = ["-", "--", ":", "-.", (0, (5, 1, 1, 1))]


def _label(dim: str, value: str) -> str:
    if dim == "strategy":
        return STRATEGY_LABELS.get(value, value)
    if dim == "aggregation":
        return SHORT_AGG.get(value, value)
    if dim == "subset":
        return {"easy": "easy (levels 1-2)", "hard": "hard (levels 3-5)"}.get(value, value)
    return value


def plot_grid(s: pd.DataFrame, panels: str, png: PathLike, pdf: PathLike, x: str = "policy_flops", *,
              order: dict[str, list[str]] | None = None, title: str = "", source: str = "") -> pd.DataFrame:
    """The paper's Figs. 4-13: one panel per value of `panels` (dataset, model, aggregation, subset, strategy),
    one curve per combination of the other dimensions that vary (colour = strategy, line style = the rest),
    error (%) against FLOPs with the min-max band over seeds; greedy as a star per model.

    `s` is a seed_summary already restricted to the figure's selection; `order` lists each dimension's values in
    the order wanted (default: as found). Returns the plotted numbers, one row per point."""
    if s.empty:
        raise ValueError("no metrics rows for this figure's selection")
    if panels not in GRID_DIMS:
        raise ValueError(f"panels must be one of {', '.join(GRID_DIMS)}, got {panels!r}")
    order = order or {}

    def values(d: pd.DataFrame, dim: str) -> list[str]:
        found = list(dict.fromkeys(d[dim]))
        return [v for v in order.get(dim, []) if v in found] + [v for v in found if v not in order.get(dim, [])]

    searched = s[s["strategy"] != "greedy"]
    styled = [d for d in GRID_DIMS if d not in (panels, "strategy") and searched[d].nunique() > 1]
    combos = searched[styled].drop_duplicates().itertuples(index=False, name=None) if styled else [()]
    style = {c: LINESTYLES[i % len(LINESTYLES)] for i, c in enumerate(sorted(combos))}
    panel_values = values(s, panels)
    fig, axes = _new_figure(len(panel_values))
    rows = []
    for ax, pv in zip(axes, panel_values):
        p = s[s[panels] == pv]
        for strat in values(p[p["strategy"] != "greedy"], "strategy") if panels != "strategy" else [pv]:
            d_s = p[p["strategy"] == strat]
            for combo, d in (d_s.groupby(styled, sort=False) if styled else [((), d_s)]):
                combo = combo if isinstance(combo, tuple) else (combo,)
                label = " ".join([_label("strategy", strat)] + [_label(k, v) for k, v in zip(styled, combo)])
                _band(ax, d, x, STRATEGY_COLORS.get(strat, "tab:gray"), label, STRATEGY_MARKERS.get(strat, "o"),
                      ls=style.get(combo, "-"))
                rows.append(d.sort_values(x).assign(panel=pv, curve=label))
        greedy = p[p["strategy"] == "greedy"]
        for i, (model, g) in enumerate(greedy.groupby("model", sort=False)):
            g = g.iloc[:1]  # greedy repeats one value under every aggregation
            ax.scatter(g[x], 100 * g["error_mean"], marker="*^sDv"[i % 5], s=120, color="black", zorder=5,
                       label=f"Greedy {model}")
            rows.append(g.assign(panel=pv, curve=f"Greedy {model}"))
        ax.set(xscale="log", xlabel=x_label(x), ylabel="Error rate (%)",
               title=AGG_LABELS.get(pv, pv) if panels == "aggregation" else _label(panels, pv))
        ax.title.set_fontsize(10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, png, pdf, title, source)
    out = pd.concat(rows, ignore_index=True)
    for k in ("mean", "min", "max"):
        out[f"error_{k}_pct"] = 100 * out[f"error_{k}"]
    cols = ["panel", "curve", *GRID_DIMS, "n", "params", x, "n_seeds", "error_mean_pct", "error_min_pct",
            "error_max_pct"]
    return out[cols]
