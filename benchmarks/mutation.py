"""Mutation testing of the core modules: how many small, realistic bugs do the unit tests catch?

For each core module, mutmut (pinned in the `mutation` extra) mutates the module alone and runs the module's
tests below (fast unit tests only) against every mutant. Writes the kill rate per module, with every surviving
mutant (file:line and the mutated line), to benchmarks/results/mutation.md and .json.

    pip install -e '.[test,mutation]'
    python benchmarks/mutation.py                   # every core module (see docs/testing.md for how long)
    python benchmarks/mutation.py grading scaling   # some of them; the report keeps the other modules' rows

Each module runs in its own scratch copy of src/ and tests/ under benchmarks/out/mutation/<module>/, so the
work tree is never modified. Survivors that are equivalent mutants (no input can tell them apart) are listed
in EQUIVALENT with the reason, counted as such in the report and excluded from the kill rate's denominator.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out" / "mutation"
RESULTS = ROOT / "benchmarks" / "results"
TARGET = 0.90
# Statuses that count as caught: a failing test, or a test run that never ends (an infinite loop).
CAUGHT = ("killed", "timeout", "segfault", "caught by type check")
PYTEST_ARGS = ["-m", "not workflow and not cluster and not vllm", "-p", "no:cacheprovider", "-p", "no:randomly"]

# Core module (its file: module_path, src/infscale/<part>/<name>.py) -> the fast unit-test files that exercise it.
# The one place to edit.
CORE_MODULES: dict[str, list[str]] = {
    "aggregation": ["tests/test_aggregation.py"],
    "claims": ["tests/test_claims.py"],
    "evaluation": ["tests/test_evaluation.py"],
    "flops": ["tests/test_flops.py", "tests/test_evaluation.py"],
    "grading": ["tests/test_grading.py", "tests/test_grading_api.py"],
    "mcts": ["tests/test_mcts.py"],
    "prm_data": ["tests/test_prm_data.py"],
    "rebase": ["tests/test_rebase.py"],
    "resampling": ["tests/test_resampling.py"],
    "scaling": ["tests/test_scaling.py", "tests/test_reporting.py"],
    "shards": ["tests/test_shards.py"],
    "stepformat": ["tests/test_stepformat.py", "tests/test_prm.py", "tests/test_prm_data.py", "tests/test_mcts.py",
                   "tests/test_rebase.py"],
    "treesearch": ["tests/test_rebase.py", "tests/test_mcts.py"],
    "verifier": ["tests/test_verifier.py", "tests/test_evaluation.py"],
}

# Surviving mutants that no input can kill: mutmut's name -> why. Keep this list short and argued. mutmut numbers
# the mutants of each function in order, so after editing a function, check its entries against the report (each
# survivor is printed with its mutation).
_SORT = ("numpy/pandas sort arrays under 17 elements by insertion sort, which is stable; and among points of "
         "equal FLOPs the envelope takes the minimum over all of them, whatever their order")
_VISITED = ("every node backpropagate reaches (the root, or a node select returned) already has N and Q: select "
            "reads st.visits[k.id] of every child it passes, so the .get default is never read")
_CHILDREN = ("mark_exhausted runs on a node just expanded into k >= 1 children (run_mcts refuses k < 1) and on its "
             "ancestors, which all have children, so the .get default is never read")
EQUIVALENT: dict[str, str] = {
    # aggregation
    "infscale.evaluation.aggregation.x_aggregate__mutmut_20":
        "best_w is only read once best is set, and then it was set too",
    "infscale.evaluation.aggregation.x_aggregate__mutmut_21":
        "best_w is only read once best is set, and then it was set too",
    "infscale.evaluation.aggregation.x_aggregate__mutmut_41":
        "every group starts 1 higher: the same winner (and first-seen tie)",
    "infscale.evaluation.aggregation.x_aggregate__mutmut_46": "every majority vote counts 2: the ranking is unchanged",
    # scaling
    "infscale.reporting.scaling.x_lower_envelope__mutmut_17": _SORT,
    "infscale.reporting.scaling.x_lower_envelope__mutmut_19": _SORT,
    "infscale.reporting.scaling.x_lower_envelope__mutmut_21": _SORT + " ('STABLE' is accepted as 'stable')",
    "infscale.reporting.scaling.x_lower_envelope__mutmut_25":
        "np.minimum.accumulate of an empty array is the empty array",
    "infscale.reporting.scaling.x_lower_envelope__mutmut_29":
        ("budgets are only multiplied and compared with floats; any "
         "numbers (even Python ints past int64) give the same result"),
    "infscale.reporting.scaling.x_lower_envelope__mutmut_31":
        ("budgets are only multiplied and compared with floats; any "
         "numbers (even Python ints past int64) give the same result"),
    "infscale.reporting.scaling.x_compute_optimal__mutmut_39":
        ("model params are sorted; " + _SORT.split(";")[0] + "; "
         "ties in params keep groupby's name order"),
    "infscale.reporting.scaling.x_compute_optimal__mutmut_46":
        ("model params are sorted; 'STABLE' is accepted as 'stable'"),
    "infscale.reporting.scaling.x_compute_optimal__mutmut_75":
        ("candidates are in model order (params, then name as groupby "
         "sorts it); comparing whole (error, params, name) tuples "
         "picks the same first one"),
    "infscale.reporting.scaling.x_compute_optimal__mutmut_77":
        ("candidates are in model order (params, then name as groupby "
         "sorts it); comparing whole (error, params, name) tuples "
         "picks the same first one"),
    "infscale.reporting.scaling.x_fit_optimal_size__mutmut_4": "pandas astype(None) is astype(float64)",
    "infscale.reporting.scaling.x_fit_optimal_size__mutmut_28":
        ("best_params was filtered with astype(float) and "
         "compute_optimal writes it as float64: to_numpy() is the same"),
    "infscale.reporting.scaling.x_fit_optimal_size__mutmut_32":
        ("compute_optimal's budget column is float64 (tested): "
         "to_numpy() is the same array"),
    # mcts
    **{f"infscale.search.mcts.x_backpropagate__mutmut_{i}": _VISITED for i in (8, 10, 11, 16, 18, 19, 23, 25, 26)},
    **{f"infscale.search.mcts.x_mark_exhausted__mutmut_{i}": _CHILDREN for i in (2, 4, 20, 22)},
    # grading
    "infscale.core.grading.x__clean_tail__mutmut_1": "an empty answer skips the loop either way and is returned as is",
    "infscale.core.grading.x__numeric_equal__mutmut_4": (
        "only is_correct calls it, inside try/except returning False: with one side None the mutant's "
        "AttributeError gives the same False"),
    "infscale.core.grading.x__symbolic_equal__mutmut_20": "math_verify's verify is False when either side is empty",
    "infscale.core.grading.x_answers_equivalent__mutmut_1": "is_correct is False when either side is None",
    **{f"infscale.core.grading.x__canonical_decimal__mutmut_{i}": (
        "the string matched _PLAIN_NUMBER (digits, sign, point), so it holds no 'X' to strip") for i in (11, 20, 25)},
    "infscale.core.grading.x__normalize_numeric__mutmut_49": (
        "the string matched _PLAIN_FRACTION (digits, sign, slash), so it holds no 'X' to strip"),
    **{f"infscale.core.grading.x__normalize_latex__mutmut_{i}": (
        "normalize_answer repeats the pass to a fixed point: a '$' the first (or last) strip leaves is stripped "
        "by the other strip of that pass or the next, before any step that reads the ends") for i in (2, 87)},
    **{f"infscale.core.grading.x__normalize_latex__mutmut_{i}": (
        "no LaTeX command is \\left, \\right, \\dfrac or \\tfrac followed by a capital letter, so "
        "(?![a-z]) and (?![A-Za-z]) match the same real inputs") for i in (25, 55)},
    "infscale.core.grading.x_is_correct__mutmut_3": (
        "a None reference normalises to None: every later path returns False, or raises into the except that "
        "returns False"),
    "infscale.core.grading.x_is_correct__mutmut_26": (
        "an answer that normalises to '' ('$', '.', a space, \\text{}) parses to nothing in math_verify, so the "
        "symbolic check it reaches instead is False too"),
    # resampling
    "infscale.evaluation.resampling.xǁProblemBootstrapǁ_curve__mutmut_79": (
        "the fallback weighs every seed of the curve the same, and the error is a ratio of sums homogeneous in the "
        "seed weights: any positive constant (1.0 or 2.0) gives the same error"),
    # stepformat
    **{f"infscale.core.stepformat.x_close_last_step__mutmut_{i}": (
        "text.rsplit(tag, n)[-1] is the text after the last tag for maxsplit 1, 2 or none at all")
       for i in (4, 6)},
}


def module_path(module: str) -> str:
    """The file of a core module, relative to the repository: src/infscale/<part>/<module>.py, the one file of that
    name in the package (module names are unique across the parts: tests/test_layering.py)."""
    found = sorted((ROOT / "src" / "infscale").rglob(f"{module}.py"))
    if len(found) != 1:
        raise SystemExit(f"{module}: expected one src/infscale/**/{module}.py, found {[str(p) for p in found]}")
    return found[0].relative_to(ROOT).as_posix()


def dotted(module: str) -> str:
    """The import name of a core module (infscale.<part>.<module>): the prefix of its mutants' names."""
    return module_path(module).removeprefix("src/").removesuffix(".py").replace("/", ".")


def mutmut_cmd(*args: str) -> list[str]:
    # `mutmut` itself, importable from this interpreter (a console script may be on another PATH).
    return [sys.executable, "-c", "import sys; from mutmut.__main__ import cli; sys.argv[0] = 'mutmut'; cli()", *args]


def prepare(module: str, tests: list[str]) -> Path:
    work = OUT / module
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(ROOT / "src", work / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "tests", work / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "config", work / "config")  # studies some tests validate (config/ci.yaml)
    py = (ROOT / "pyproject.toml").read_text()
    py = re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", py)
    cfg = {
        "source_paths": ["src"],
        "also_copy": ["config"],
        "only_mutate": [module_path(module)],
        "pytest_add_cli_args": PYTEST_ARGS,
        "pytest_add_cli_args_test_selection": tests,
        "use_git_change_detection": False,
        # a mutant may use (tests' CPU seconds + 1) * 10 CPU seconds (mutmut's default, 30x, makes every
        # endless-loop mutant of grading cost minutes); CPU time, so a busy machine does not cause false timeouts
        "timeout_multiplier": 5.0,
        "track_dependencies": False,
    }
    py += "\n[tool.mutmut]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in cfg.items())
    (work / "pyproject.toml").write_text(py)
    return work


def env_for_run() -> dict[str, str]:
    env = dict(os.environ)
    # The mutated copy must be the `infscale` the tests import: drop a PYTHONPATH entry pointing at a src/.
    keep = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).name != "src"]
    env["PYTHONPATH"] = os.pathsep.join(keep)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def survivor_location(module: str, diff: str) -> tuple[int | None, str, str]:
    """Line in the original module of a mutant's first changed line, that line, and the mutated line.

    `diff` is the mutant's name, then `mutmut show`'s diff, whose hunk lines count from the function's `def`."""
    lines = diff.splitlines()
    removed = [ln[1:] for ln in lines if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:] for ln in lines if ln.startswith("+") and not ln.startswith("+++")]
    old = removed[0].strip() if removed else ""
    new = added[0].strip() if added else ""
    src = (ROOT / module_path(module)).read_text().splitlines()
    func = re.search(r"x_?ǁ?(\w+?)__mutmut_\d+$", lines[0] if lines else "")
    def_line = None
    if func:
        name = func.group(1).split("ǁ")[-1]
        def_line = next((i for i, line in enumerate(src) if re.match(rf"\s*(async\s+)?def {re.escape(name)}\(", line)),
                        None)
    hunk = next((i for i, ln in enumerate(lines) if ln.startswith("@@")), None)
    if def_line is not None and hunk is not None:
        offset = int(re.match(r"@@ -(\d+)", lines[hunk]).group(1))
        for ln in lines[hunk + 1:]:
            if ln.startswith("-"):
                line = def_line + offset  # 0-based def + 1-based offset: the 1-based file line
                if src[line - 1].strip() == old:
                    return line, old, new
                break
            if not ln.startswith("+"):
                offset += 1
    for i in range(def_line or 0, len(src)):  # fallback: the first such line after the def
        if old and src[i].strip() == old:
            return i + 1, old, new
    return None, old, new


def run_module(module: str, tests: list[str], max_children: int) -> dict:
    missing = [t for t in tests if not (ROOT / t).exists()]
    if missing:
        raise SystemExit(f"{module}: test files missing: {missing}")
    work = prepare(module, tests)
    env = env_for_run()
    t0 = time.perf_counter()
    log = work / "mutmut-run.log"
    with open(log, "w") as fh:
        proc = subprocess.run(mutmut_cmd("run", "--max-children", str(max_children)), cwd=work, env=env,
                              stdout=fh, stderr=subprocess.STDOUT)
    meta = work / "mutants" / f"{module_path(module)}.meta"
    if not meta.exists():
        raise SystemExit(f"{module}: mutmut failed (exit {proc.returncode}); see {log}")
    from mutmut.stats import status_by_exit_code  # noqa: PLC0415 - only needed here

    def statuses() -> dict[str, str]:
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        return {k: ("not checked" if v is None else status_by_exit_code[v]) for k, v in codes.items()}

    status = statuses()
    if status and all(v == "not checked" for v in status.values()):
        # mutmut could not run the tests on the unmutated copy (e.g. a test reads a file the scratch copy lacks)
        raise SystemExit(f"{module}: no mutant was checked: the tests failed before mutation; see {log}")
    # Check survivors once more, alone: under load mutmut 3.8 has reported an endless loop as a survivor.
    again = [k for k, v in status.items() if v == "survived" and k not in EQUIVALENT]
    if again:
        with open(log, "a") as fh:
            subprocess.run(mutmut_cmd("run", "--max-children", str(max_children), *again), cwd=work, env=env,
                           stdout=fh, stderr=subprocess.STDOUT)
        status = statuses()
    wall = time.perf_counter() - t0
    survivors = []
    for name, st in sorted(status.items(), key=lambda kv: kv[0]):
        if st in CAUGHT:
            continue
        show = subprocess.run(mutmut_cmd("show", name), cwd=work, env=env, capture_output=True, text=True)
        diff = show.stdout
        line, old, new = survivor_location(module, name + "\n" + diff)
        survivors.append({"mutant": name, "status": st, "line": line, "original": old, "mutated": new,
                          "equivalent": EQUIVALENT.get(name, "")})
    stale = sorted(k for k in EQUIVALENT if k.startswith(dotted(module) + ".") and status.get(k) != "survived")
    if stale:  # the function changed and mutmut renumbered its mutants: the reason may now describe another one
        print(f"{module}: EQUIVALENT entries that no longer name a survivor (remove or re-check): {stale}")
    total = len(status)
    killed = sum(1 for s in status.values() if s in CAUGHT)
    equivalent = sum(1 for s in survivors if s["equivalent"])
    denom = total - equivalent
    rate = killed / denom if denom else 1.0
    return {"module": module, "tests": tests, "total": total, "killed": killed, "equivalent": equivalent,
            "kill_rate": rate, "wall_s": round(wall, 1), "survivors": survivors,
            "statuses": {s: sum(1 for v in status.values() if v == s) for s in sorted(set(status.values()))}}


def write_report(results: dict[str, dict], calib_s: float | None, started: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    import mutmut  # noqa: PLC0415

    version = getattr(mutmut, "__version__", None)
    if version is None:
        from importlib.metadata import version as _v  # noqa: PLC0415
        version = _v("mutmut")
    payload = {"tool": f"mutmut {version}", "target": TARGET, "updated": started, "calib_s": calib_s,
               "cpus": os.cpu_count(), "modules": results}
    (RESULTS / "mutation.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Mutation testing of the core modules",
        "",
        f"Tool: mutmut {version}; command: `python benchmarks/mutation.py` (docs/testing.md). Each module is "
        "mutated alone and its mutants run against the module's fast unit-test files (`CORE_MODULES` in "
        "benchmarks/mutation.py). Killed counts a failing test or a timeout (an endless loop); kill rate = "
        f"killed / (mutants - equivalent); target {TARGET:.0%} in every module. Equivalent mutants (no input "
        "tells them apart) are listed with the reason in `EQUIVALENT` in benchmarks/mutation.py.",
        "",
        f"Wall times on {os.cpu_count()} CPUs (--max-children = CPUs); calib: seconds of the machine-speed "
        "calibration (`--calib`, e.g. `python /work/shared/tools/calib.py`) measured right before that run, "
        "as the machine's speed varies 2-3x between runs.",
        "",
        "| module | mutants | killed | equivalent | surviving | kill rate | wall (s) | calib (s) | run | tests |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for m in sorted(results):
        r = results[m]
        surv = len(r["survivors"]) - r["equivalent"]
        flag = "" if r["kill_rate"] >= TARGET else " (below target)"
        lines.append(f"| {m} | {r['total']} | {r['killed']} | {r['equivalent']} | {surv} | "
                     f"{r['kill_rate']:.1%}{flag} | {r['wall_s']} | {r.get('calib_s') or ''} | {r.get('run', '')} | "
                     f"{', '.join(Path(t).name for t in r['tests'])} |")
    total_wall = sum(r["wall_s"] for r in results.values())
    lines += ["", f"Total wall time: {total_wall:.0f} s.", ""]
    for m in sorted(results):
        r = results[m]
        if not r["survivors"]:
            continue
        lines += [f"## {m}: mutants not killed", ""]
        for s in r["survivors"]:
            where = f"{module_path(m)}:{s['line']}" if s["line"] else module_path(m)
            tag = f" EQUIVALENT: {s['equivalent']}" if s["equivalent"] else f" ({s['status']})"
            lines.append(f"- `{where}` `{s['mutant']}`: `{s['original']}` -> `{s['mutated']}`{tag}")
        lines.append("")
    (RESULTS / "mutation.md").write_text("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("modules", nargs="*", help=f"core modules to run (default: all of {sorted(CORE_MODULES)})")
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 1, help="parallel mutant workers")
    ap.add_argument("--calib", type=float, default=None, help="machine calibration seconds to record")
    ap.add_argument("--fail-under", action="store_true", help=f"exit 1 when a module is below {TARGET * 100:.0f}%%")
    args = ap.parse_args()
    unknown = sorted(set(args.modules) - set(CORE_MODULES))
    if unknown:
        ap.error(f"unknown module(s) {unknown}; core modules: {sorted(CORE_MODULES)}")
    modules = args.modules or sorted(CORE_MODULES)
    prev = {}
    if (RESULTS / "mutation.json").exists() and args.modules:
        prev = json.loads((RESULTS / "mutation.json").read_text()).get("modules", {})
    if prev:
        old = json.loads((RESULTS / "mutation.json").read_text())
        for r in prev.values():  # reports written before calib and date were kept per module
            r.setdefault("calib_s", old.get("calib_s"))
            r.setdefault("run", old.get("updated", ""))
    results = {m: r for m, r in prev.items() if m in CORE_MODULES}
    started = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    for m in modules:
        r = run_module(m, CORE_MODULES[m], args.max_children)
        r.update(calib_s=args.calib, run=started)
        results[m] = r
        print(f"{m}: {r['killed']}/{r['total'] - r['equivalent']} killed ({r['kill_rate']:.1%}), {r['wall_s']} s",
              flush=True)
        write_report(results, args.calib, started)
    if args.fail_under and any(r["kill_rate"] < TARGET for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
