"""Metrics table: loading, per-seed summaries, CSV/Markdown tables, atomic file writes."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable

import numpy as np
import pandas as pd

from infscale.core.io import atomic_path, write_text

# Columns every metrics CSV must carry (one row per dataset/model/strategy/n/seed/aggregation/subset).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "dataset", "model", "strategy", "n", "seed", "aggregation", "subset", "n_problems",
    "accuracy", "error", "params", "policy_prefill_flops", "policy_decode_flops", "prm_flops",
    "policy_flops", "total_flops", "generated_tokens",
)
FLOPS_COLUMNS: tuple[str, ...] = (
    "policy_prefill_flops", "policy_decode_flops", "prm_flops", "policy_flops", "total_flops",
    "policy_flops_prefix_shared", "total_flops_prefix_shared",
)
# Means over seeds carried into the summary when the metrics have them.
EXTRA_MEAN_COLUMNS: tuple[str, ...] = ("generated_tokens", "invalid_share", "prm_auc", "coverage", "coverage_first_n",
                                       "vote_limit")
# One point of a curve: error is averaged over seeds within each group.
GROUP_KEYS: list[str] = ["dataset", "model", "strategy", "aggregation", "subset", "n"]
_STR_COLS = ("dataset", "model", "strategy", "aggregation", "subset")
_INT_COLS = ("n", "seed", "n_problems", "params")

PathLike = str | os.PathLike[str]


def atomic_write_csv(df: pd.DataFrame, path: PathLike) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)


def load_metrics(paths: PathLike | Iterable[PathLike]) -> pd.DataFrame:
    """Concatenate metrics CSVs; raise ValueError naming the file and the first missing column."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames = []
    for p in paths:
        df = pd.read_csv(p)
        for col in REQUIRED_COLUMNS:
            if col not in df.columns:
                raise ValueError(f"metrics file {p} lacks required column {col!r}")
        frames.append(df)
    if not frames:
        raise ValueError("load_metrics: no metrics files given")
    out = pd.concat(frames, ignore_index=True)
    for c in _STR_COLS:
        out[c] = out[c].astype(str)
    for c in _INT_COLS:
        out[c] = out[c].astype("int64")
    return out


def seed_summary(df: pd.DataFrame, x: str = "policy_flops") -> pd.DataFrame:
    """Aggregate over seeds: per GROUP_KEYS, mean of `x` (and of every FLOPs and EXTRA_MEAN column present), params,
    error_mean/min/max/std (std: sample std, NaN for one seed), accuracy_mean and n_seeds."""
    if x not in df.columns:
        raise ValueError(f"seed_summary: no column {x!r}")
    mean_cols = list(dict.fromkeys([x, *[c for c in FLOPS_COLUMNS if c in df.columns]]))
    mean_cols += [c for c in EXTRA_MEAN_COLUMNS if c in df.columns]
    g = df.groupby(GROUP_KEYS, sort=True)
    out = g[mean_cols].mean()
    out["params"] = g["params"].first()
    err = g["error"]
    out["error_mean"] = err.mean()
    out["error_min"] = err.min()
    out["error_max"] = err.max()
    out["error_std"] = err.std(ddof=1)
    out["accuracy_mean"] = 1.0 - out["error_mean"]
    out["n_seeds"] = g["seed"].nunique()
    out = out.reset_index()
    out.attrs["x"] = x
    return out


def _fmt(v: object, floatfmt: str) -> str:
    """One Markdown cell: floats with `floatfmt`, NaN/None empty, pipes escaped."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)):
        return format(float(v), floatfmt)
    return str(v).replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub-flavoured Markdown table: header, separator, one line per row."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_fmt(v, floatfmt) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, csv_path: PathLike, md_path: PathLike,
                floatfmt: str = ".4g") -> None:
    """Write `df` as CSV (full precision) and as a Markdown table, both atomically."""
    atomic_write_csv(df, csv_path)
    write_text(md_path, to_markdown(df, floatfmt))
