# Figures, tables and the claims scorecard: one target per figure, each with the table of its numbers.
REPORT = config["report"]
# results/tables/compute_optimal_choice.csv is the choice table, not compute_optimal_{dataset} of a data set "choice".
NOT_CHOICE = rf"{SLUG}(?<!_choice)"


rule figure_error_vs_flops:
    input:
        checked(lambda wc: [metrics_path(wc.dataset, wc.model, s) for s in EVAL["strategies"]]),
    output:
        **figure_outputs(
            "error_vs_flops_{dataset}_{model}",
            caption="../report/error_vs_flops.rst",
            category="Error vs FLOPs",
            subcategory="{dataset} {model}",
            table_subcategory="Error vs FLOPs",
        ),
    log:
        f"{R}/logs/figure_error_vs_flops/{{dataset}}_{{model}}.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
    script:
        "../scripts/figure_error_vs_flops.py"


rule figure_compute_optimal:
    input:
        checked(lambda wc: [metrics_path(wc.dataset, m, REPORT["compute_optimal_strategy"]) for m in EVAL["models"]]),
    output:
        **figure_outputs(
            "compute_optimal_{dataset}",
            caption="../report/compute_optimal.rst",
            category="Compute-optimal model size",
            subcategory="{dataset}",
            table_subcategory="Compute-optimal model size",
        ),
    log:
        f"{R}/logs/figure_compute_optimal/{{dataset}}.log",
    wildcard_constraints:
        dataset=NOT_CHOICE,
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
        strategy=REPORT["compute_optimal_strategy"],
        aggregation=REPORT["compute_optimal_aggregation"],
    script:
        "../scripts/figure_compute_optimal.py"


rule table4:
    input:
        checked(lambda wc: metrics_for_dataset(wc.dataset)),
    output:
        csv=report(
            f"{R}/tables/table4_{{dataset}}.csv",
            caption="../report/table4.rst",
            category="Tables",
            subcategory="Paper tables",
        ),
        md=f"{R}/tables/table4_{{dataset}}.md",
    log:
        f"{R}/logs/table4/{{dataset}}.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
    script:
        "../scripts/table4.py"


rule claims:
    input:
        metrics=all_metrics(),
        problems=all_problems(),
    output:
        claims=report(f"{R}/claims.csv", caption="../report/claims.rst", category="Claims"),
        units=report(f"{R}/claims_units.csv", caption="../report/claims_units.rst", category="Claims"),
    log:
        f"{R}/logs/claims.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
        claims=REPORT["claims"],
    script:
        "../scripts/claims.py"


# The compute-optimal choice: per FLOPs budget, the configuration (model, strategy, aggregation, n) with the lowest
# error, with the runner-up and paired-bootstrap intervals (the claims' draws and seed); the Pareto frontier figure.
rule compute_optimal_choice:
    input:
        metrics=all_metrics(),
        problems=all_problems(),
    output:
        csv=report(
            f"{R}/tables/compute_optimal_choice.csv",
            caption="../report/compute_optimal_choice.rst",
            category="Tables",
            subcategory="Compute-optimal choice",
        ),
        md=f"{R}/tables/compute_optimal_choice.md",
    log:
        f"{R}/logs/compute_optimal_choice.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
        claims=REPORT["claims"],
    script:
        "../scripts/compute_optimal_choice.py"


rule figure_compute_optimal_choice:
    input:
        checked(lambda wc: metrics_for_dataset(wc.dataset)),
    output:
        **figure_outputs(
            "compute_optimal_choice_{dataset}",
            caption="../report/compute_optimal_choice_figure.rst",
            category="Compute-optimal choice",
            subcategory="{dataset}",
            table_subcategory="Compute-optimal choice",
        ),
    log:
        f"{R}/logs/figure_compute_optimal_choice/{{dataset}}.log",
    localrule: True
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
    script:
        "../scripts/figure_compute_optimal_choice.py"


rule figure_strategies:
    input:
        checked(lambda wc: [metrics_path(wc.dataset, wc.model, s) for s in EVAL["strategies"]]),
    output:
        **figure_outputs(
            "strategies_{dataset}_{model}_{aggregation}",
            caption="../report/strategies.rst",
            category="Strategies at equal FLOPs",
            subcategory="{dataset} {model}",
            table_subcategory="Strategies at equal FLOPs",
        ),
    log:
        f"{R}/logs/figure_strategies/{{dataset}}_{{model}}_{{aggregation}}.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
    script:
        "../scripts/figure_strategies.py"


rule figure_easy_hard:
    input:
        checked(
            lambda wc: [
                metrics_path(wc.dataset, wc.model, s)
                for s in ("greedy", "sampling", "rebase")
                if s in EVAL["strategies"]
            ]
        ),
    output:
        **figure_outputs(
            "easy_hard_{dataset}_{model}",
            caption="../report/easy_hard.rst",
            category="Easy vs hard problems",
            subcategory="{dataset} {model}",
            table_subcategory="Easy vs hard problems",
        ),
    log:
        f"{R}/logs/figure_easy_hard/{{dataset}}_{{model}}.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
        aggregation=REPORT["compute_optimal_aggregation"],
    script:
        "../scripts/figure_easy_hard.py"


rule table1:
    input:
        checked(lambda wc: [metrics_path(wc.dataset, m, s) for m in EVAL["models"] for s in table1_strategies()]),
    output:
        csv=report(
            f"{R}/tables/table1_{{dataset}}.csv",
            caption="../report/table1.rst",
            category="Tables",
            subcategory="Paper tables",
        ),
        md=f"{R}/tables/table1_{{dataset}}.md",
    log:
        f"{R}/logs/table1/{{dataset}}.log",
    conda:
        CONDA_ENV
    params:
        x=REPORT["x"],
        aggregation=REPORT["compute_optimal_aggregation"],
        budgets=REPORT["table1"],
    script:
        "../scripts/table1.py"


# Named figures and tables (`figures:` in the config, e.g. the paper's): results/paper/<name>.*, each reading only
# the metrics of its own data sets, models and strategies.
PAPER_PLOTS = [n for n, f in FIGURES.items() if f["kind"] in PLOT_KINDS]
PAPER_TABLES = [n for n, f in FIGURES.items() if f["kind"] not in PLOT_KINDS]

if PAPER_PLOTS:

    rule paper_figure:
        input:
            lambda wc: figure_metrics(wc.figure),
        output:
            png=report(
                f"{R}/paper/{{figure}}.png",
                caption="../report/paper.rst",
                category="Paper figures",
            ),
            pdf=f"{R}/paper/{{figure}}.pdf",
            csv=report(
                f"{R}/paper/{{figure}}.csv",
                caption="../report/table.rst",
                category="Tables",
                subcategory="Paper figures",
            ),
            md=f"{R}/paper/{{figure}}.md",
        log:
            f"{R}/logs/paper_figure/{{figure}}.log",
        wildcard_constraints:
            figure=one_of(PAPER_PLOTS),
        localrule: True
        conda:
            CONDA_ENV
        params:
            spec=lambda wc: FIGURES[wc.figure],
            x=REPORT["x"],
            table1=REPORT["table1"],
        script:
            "../scripts/paper_figure.py"


if PAPER_TABLES:

    rule paper_table:
        input:
            lambda wc: figure_metrics(wc.figure),
        output:
            csv=report(
                f"{R}/paper/{{figure}}.csv",
                caption="../report/paper.rst",
                category="Paper tables",
            ),
            md=f"{R}/paper/{{figure}}.md",
        log:
            f"{R}/logs/paper_table/{{figure}}.log",
        wildcard_constraints:
            figure=one_of(PAPER_TABLES),
        localrule: True
        conda:
            CONDA_ENV
        params:
            spec=lambda wc: FIGURES[wc.figure],
            x=REPORT["x"],
            table1=REPORT["table1"],
        script:
            "../scripts/paper_figure.py"


rule paper:
    """Every named figure and table (`snakemake paper`): for the paper's config, the paper's figures and tables."""
    input:
        paper_targets(),
