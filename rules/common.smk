# Config validation, wildcard constraints, paths and target lists shared by every rule.
import re
from pathlib import Path

from infscale import smoke
from infscale.core import config as cfg
from infscale.core import numerics
from infscale.core.config import STRATEGIES, TREE_STRATEGIES
from infscale.core.validation import validate_config
from infscale.evaluation.aggregation import AGGREGATIONS
from infscale.search.placement import check_job_gpus
from infscale.search.shards import shard_dir_of

_validated = cfg.canonical(validate_config(config))  # the schema is package data: infscale/resources
config.clear()
config.update(_validated)
check_job_gpus(config)  # a generate job asks for the GPUs its models use, no idle one
# The same digits on every Intel x86-64 machine with AVX2: every job inherits this environment (a cluster job's
# snakemake parses this file again on its node); numerics.pin: false leaves it alone (docs/reproducibility.md).
numerics.apply(config)

R = "results"
# --software-deployment-method conda runs every job in this environment (docs/cluster.md).
CONDA_ENV = "../envs/infscale.yaml"
SAMPLED_STRATEGIES = [s for s in STRATEGIES if s not in TREE_STRATEGIES]  # scored after generation
SLUG = r"[A-Za-z0-9.-]+"


wildcard_constraints:
    dataset=SLUG,
    model=SLUG,
    prm=SLUG,
    strategy=r"[a-z_]+",
    split=r"train|prm|test",
    aggregation=r"[a-z_]+",
    n=r"\d+",
    seed=r"\d+",


EVAL = config["evaluate"]


def checked(input_function):
    """An input function that first checks the names in the target against the config, so that an unknown
    model, data set, strategy or aggregation is an error naming it and what the config defines (not a KeyError)."""

    def check(wc):
        known = {
            "dataset": list(config["datasets"]),
            "model": list(config["models"]),
            "strategy": list(STRATEGIES),
            "aggregation": list(AGGREGATIONS),
        }
        for kind, names in known.items():
            value = wc.get(kind)
            if value is not None and value not in names:
                raise ValueError(
                    f"the target names {kind} {value!r}, which the config does not define; "
                    f"{kind}s defined: {', '.join(names)}"
                )
        return input_function(wc)

    return check


PRM = config["prm"]["name"]


def job_threads(rule):
    return lambda wc: cfg.job_resources(config, rule, wc.get("model"), wc.get("strategy"))["threads"]


def job_resources(rule):
    """Scheduler resources of `rule` (gpu, and mem_mb/runtime where configured), per model and strategy (a tree
    search's generate job holds the PRM too: resources.generate_tree) where it has them."""
    keys = [k for k in cfg.job_resources(config, rule) if k != "threads"]
    return {k: (lambda wc, k=k: cfg.job_resources(config, rule, wc.get("model"), wc.get("strategy"))[k]) for k in keys}


def one_of(names):
    """A wildcard constraint matching exactly these slugs (nothing when empty)."""
    return "|".join(re.escape(n) for n in names) or "(?!)"


TRAINED, FETCHED = cfg.trained_models(config), cfg.checkpoint_models(config)
FIGURES = config["figures"]  # the named figures and tables (results/paper/<name>.*), e.g. the paper's
PLOT_KINDS = ("grid", "compute_optimal")


def paper_figure_files(name):
    ext = ("png", "pdf", "csv", "md") if FIGURES[name]["kind"] in PLOT_KINDS else ("csv", "md")
    return [f"{R}/paper/{name}.{e}" for e in ext]


def paper_targets():
    return [f for name in FIGURES for f in paper_figure_files(name)]


def figure_metrics(name):
    """The metrics files one named figure reads: its data sets x models x strategies, nothing else."""
    f = FIGURES[name]
    return [metrics_path(d, m, s) for d in f["datasets"] for m in f["models"] for s in f["strategies"]]


def policy_dir(model):
    return f"{R}/models/policy/{model}"


def prm_dir():
    """What the study's verifier loads (verifier_dir)."""
    return verifier_dir(PRM)


def scored_runs(dataset, model, strategy):
    """[(scored file, seed, budgets it serves)] of one (dataset, model, strategy)."""
    return [
        (f"{R}/scored/{dataset}/{model}/{strategy}/n{n}/seed{seed}.jsonl", seed, served)
        for n, served in cfg.generation_runs(config, model, strategy)
        for seed in cfg.seeds_for(config, strategy)
    ]


def metrics_path(dataset, model, strategy):
    return f"{R}/metrics/{dataset}/{model}/{strategy}.csv"


def problems_path(dataset, model, strategy):
    """Per-problem outcomes beside a metrics file (written by the same job)."""
    return f"{R}/metrics/{dataset}/{model}/{strategy}.problems.csv"


def metrics_for_dataset(dataset):
    return [metrics_path(dataset, m, s) for m in EVAL["models"] for s in EVAL["strategies"]]


def table1_strategies():
    """Table 1: sampling against REBASE, and beam search and DVTS where the study evaluates them."""
    return ["sampling", "rebase"] + [s for s in cfg.BEAM_STRATEGIES if s in EVAL["strategies"]]


def all_metrics():
    return [p for d in EVAL["datasets"] for p in metrics_for_dataset(d)]


def all_problems():
    return [problems_path(d, m, s) for d in EVAL["datasets"] for m in EVAL["models"] for s in EVAL["strategies"]]


def figure_files(name):
    return [f"{R}/figures/{name}.png", f"{R}/figures/{name}.pdf", f"{R}/tables/{name}.csv", f"{R}/tables/{name}.md"]


def figure_outputs(
    name,
    caption,
    category,
    subcategory=None,
    table_caption="../report/table.rst",
    table_category="Tables",
    table_subcategory=None,
):
    """png, pdf, csv and md at the paths of figure_files, the figure and its table of numbers shown in the report:
    every figure's output block is `**figure_outputs(...)`."""
    png, pdf, csv, md = figure_files(name)
    return dict(
        png=report(png, caption=caption, category=category, subcategory=subcategory),
        pdf=pdf,
        csv=report(csv, caption=table_caption, category=table_category, subcategory=table_subcategory),
        md=md,
    )


def grader(dataset):
    return config["datasets"][dataset]["grader"]


def has_levels(dataset):
    """Problems with difficulty levels (toy, MATH) get the easy/hard comparison."""
    d = config["datasets"][dataset]
    return d["source"] == "toy" or d["grader"] in ("math500", "math")


def all_targets():
    tree = [s for s in EVAL["strategies"] if s in TREE_STRATEGIES]
    targets = []
    for d in EVAL["datasets"]:
        for m in EVAL["models"]:
            targets += figure_files(f"error_vs_flops_{d}_{m}")
            if tree:
                targets += [f for a in EVAL["aggregations"] for f in figure_files(f"strategies_{d}_{m}_{a}")]
            if "rebase" in tree and "sampling" in EVAL["strategies"] and has_levels(d):
                targets += figure_files(f"easy_hard_{d}_{m}")
        targets += figure_files(f"compute_optimal_{d}")
        targets += figure_files(f"compute_optimal_choice_{d}")
        targets += [f"{R}/tables/table4_{d}.csv", f"{R}/tables/table4_{d}.md"]
        if "rebase" in tree and "sampling" in EVAL["strategies"]:
            targets += [f"{R}/tables/table1_{d}.csv", f"{R}/tables/table1_{d}.md"]
    targets += [f"{R}/tables/compute_optimal_choice.csv", f"{R}/tables/compute_optimal_choice.md"]
    targets += [f"{R}/claims.csv", f"{R}/claims_units.csv"]
    return targets + paper_targets() + prm_quality_targets() + coverage_targets()


# Input functions and names of the data, fine-tuning and PRM-quality rules (rules/*.smk hold rules only).
def data_inputs(wildcards):
    """Local files only: a hub data set is read by the job itself (never at planning), unless a local file
    overrides that split."""
    d = config["datasets"][wildcards.dataset]
    return [d["files"][wildcards.split]] if wildcards.split in d.get("files", {}) else []


PRM_CFG = config["prm"]
TOKENIZER = f"{R}/models/tokenizer"


def uses_tokenizer(block):
    return "arch" in block and not block.get("hub_id")


def base_dir(block):
    """The local copy of a block's hub base (fetched by fetch_base), [] without one; a local directory is used
    where it is."""
    hub_id = block.get("hub_id")
    if not hub_id or Path(hub_id).exists():
        return []
    return f"{R}/models/base/{cfg.base_slug(hub_id)}"


VERIFIERS = cfg.verifiers(config)  # the study's verifier (prm) first, then the ablations (prm_ablations)
ABLATIONS = list(config["prm_ablations"])
ROLLOUT_PRMS = [n for n, b in VERIFIERS.items() if b["source"] == "rollouts"]
TRAINED_PRMS = [n for n, b in VERIFIERS.items() if b["source"] in ("rollouts", "dataset")]
FETCHED_PRMS = [n for n, b in VERIFIERS.items() if b["source"] == "checkpoint"]

BASES = {
    cfg.base_slug(b["hub_id"]): b["hub_id"]
    for b in [*config["models"].values(), *[v for v in VERIFIERS.values() if v["source"] == "dataset"]]
    if b.get("hub_id") and not Path(b["hub_id"]).exists()
}


# Few cores run the ready job of highest priority first. Every PRM-guided job (tree search, scoring, the rollout
# labels) waits on the verifiers' policies, and a rollout PRM's labelling and training are a chain of their own
# behind them: those start first (benchmarks/results/config.md: one core idle for minutes otherwise).
VERIFIER_POLICIES = {b["policy"] for b in VERIFIERS.values() if b.get("policy")}
CRITICAL_PRIORITY, TRAIN_PRIORITY = 20, 10


def train_priority(wildcards):
    return CRITICAL_PRIORITY if wildcards.model in VERIFIER_POLICIES else TRAIN_PRIORITY


def verifier_dir(name):
    """What a verifier loads: a PRM's checkpoint, or the policy whose likelihood verifies."""
    block = VERIFIERS[name]
    return policy_dir(block["policy"]) if block["source"] == "policy_likelihood" else f"{R}/models/prm/{name}"


def prm_init(name):
    """The policy checkpoint a PRM starts from (Math-Shepherd's way), unless it has a hub base or an arch."""
    block = VERIFIERS[name]
    if block.get("hub_id") or not block["init_from_policy"] or "policy" not in block:
        return []
    return policy_dir(block["policy"])


def prm_samplers(name):
    """The policies whose sampled solutions a rollout-labelled PRM is trained on (default: its completer's)."""
    block = VERIFIERS[name]
    return block["sample_from"] or [block["policy"]]


def prm_training_data(name):
    block = VERIFIERS[name]
    if block["source"] == "rollouts":
        return f"{R}/prm_data/{name}.jsonl"
    return f"{R}/data/{block['dataset']}/train.jsonl"


def prm_quality_groups():
    """[(verifier, dataset, model, scored files)]: the largest sampling run of each policy, every seed (smaller
    budgets are its first candidates), as the study's verifier scored it, then as each ablation verifier did."""
    groups = []
    for name in VERIFIERS:
        for d in EVAL["datasets"]:
            for m in EVAL["models"]:
                files = [
                    f if name == PRM else f.replace(f"{R}/scored/", f"{R}/scored_ablations/{name}/", 1)
                    for f, _, served in scored_runs(d, m, "sampling")
                    if max(served) == max(cfg.budgets(config, m, "sampling"))
                ]
                groups.append((name, d, m, files))
    return groups


def coverage_targets():
    """The coverage fit (rules/coverage.smk) where the study samples."""
    if "sampling" not in EVAL["strategies"]:
        return []
    return [f"{R}/tables/coverage_fit.csv", f"{R}/tables/coverage_fit.md"]


def prm_quality_targets():
    if "sampling" not in EVAL["strategies"]:
        return []
    return figure_files("prm_quality")


def prm_label_data():
    """{verifier: its training rows} of the PRMs trained on toy-task rollout labels (exact step correctness is
    known, so the report measures the labels)."""
    return {
        n: f"{R}/prm_data/{n}.jsonl"
        for n in ROLLOUT_PRMS
        if config["datasets"][VERIFIERS[n]["dataset"]]["source"] == "toy"
    }


# The smoke run (rules/smoke.smk)
SMOKE_RUNTIME = 60  # minutes: loading a 34B base, sharding it and two steps take a fraction of that


def smoke_resources(rule):
    """The resources of the job it stands for (GPUs, host memory), with a short time limit: it queues sooner."""
    return {**job_resources(rule), "runtime": SMOKE_RUNTIME}


SMOKE_PRMS = [p for p in TRAINED_PRMS if VERIFIERS[p]["source"] == "dataset" and not prm_init(p)]
SMOKE_ROWS = [f"{R}/smoke/train_policy/{m}.json" for m in TRAINED] + [
    f"{R}/smoke/train_prm/{p}.json" for p in SMOKE_PRMS
]
