# Inference scaling laws (Wu et al. 2024): which model size and strategy solve the most problems per FLOP.
# Thin by design: the logic lives in the tested package src/infscale; rules/ wire files together.
from snakemake.utils import min_version

min_version("9.0")


# The embedded default, unless the user names a study with --configfile (then that file alone is the config:
# Snakemake would otherwise merge both, mixing the default's models into the other study).
if not config:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/generate.smk"
include: "rules/aggregate.smk"
include: "rules/plots.smk"
include: "rules/prm_quality.smk"
include: "rules/coverage.smk"
include: "rules/smoke.smk"


# Light rules run where Snakemake runs, also under a cluster executor (profiles/slurm); only the model jobs
# (train_policy, label_prm_data, train_prm, generate, score, fetch_model/fetch_prm) are submitted. Data
# preparation stays here too: login nodes can reach the network (hub data sets), compute nodes often cannot.
# Rules defined only for some studies (train_tokenizer, fetch_base, fetch_model, fetch_prm, paper_figure,
# paper_table), the tree-search pass-through (tree_scores) and the compute-optimal choice say `localrule: True`
# themselves.
localrules:
    all,
    prepare_data,
    metrics,
    figure_error_vs_flops,
    figure_compute_optimal,
    figure_strategies,
    figure_easy_hard,
    table4,
    table1,
    claims,
    prm_quality,
    coverage_fit,
    paper,


rule all:
    default_target: True
    input:
        all_targets(),
