# Figures, tables and the claims scorecard: one target per figure, each with the table of its numbers.
REPORT = config["report"]


rule figure_error_vs_flops:
    input:
        lambda wc: [metrics_path(wc.dataset, wc.model, s) for s in EVAL["strategies"]],
    output:
        png=f"{R}/figures/error_vs_flops_{{dataset}}_{{model}}.png",
        pdf=f"{R}/figures/error_vs_flops_{{dataset}}_{{model}}.pdf",
        csv=f"{R}/tables/error_vs_flops_{{dataset}}_{{model}}.csv",
        md=f"{R}/tables/error_vs_flops_{{dataset}}_{{model}}.md",
    params:
        x=REPORT["x"],
    log:
        f"{R}/logs/figure_error_vs_flops/{{dataset}}_{{model}}.log",
    script:
        "../scripts/figure_error_vs_flops.py"


rule figure_compute_optimal:
    input:
        lambda wc: [metrics_path(wc.dataset, m, REPORT["compute_optimal_strategy"]) for m in EVAL["models"]],
    output:
        png=f"{R}/figures/compute_optimal_{{dataset}}.png",
        pdf=f"{R}/figures/compute_optimal_{{dataset}}.pdf",
        csv=f"{R}/tables/compute_optimal_{{dataset}}.csv",
        md=f"{R}/tables/compute_optimal_{{dataset}}.md",
    params:
        x=REPORT["x"],
        strategy=REPORT["compute_optimal_strategy"],
        aggregation=REPORT["compute_optimal_aggregation"],
    log:
        f"{R}/logs/figure_compute_optimal/{{dataset}}.log",
    script:
        "../scripts/figure_compute_optimal.py"


rule table4:
    input:
        lambda wc: metrics_for_dataset(wc.dataset),
    output:
        csv=f"{R}/tables/table4_{{dataset}}.csv",
        md=f"{R}/tables/table4_{{dataset}}.md",
    params:
        x=REPORT["x"],
    log:
        f"{R}/logs/table4/{{dataset}}.log",
    script:
        "../scripts/table4.py"


rule claims:
    input:
        metrics=all_metrics(),
        problems=all_problems(),
    output:
        f"{R}/claims.csv",
    params:
        x=REPORT["x"],
        claims=REPORT["claims"],
    log:
        f"{R}/logs/claims.log",
    script:
        "../scripts/claims.py"


rule figure_strategies:
    input:
        lambda wc: [metrics_path(wc.dataset, wc.model, s) for s in EVAL["strategies"]],
    output:
        png=f"{R}/figures/strategies_{{dataset}}_{{model}}_{{aggregation}}.png",
        pdf=f"{R}/figures/strategies_{{dataset}}_{{model}}_{{aggregation}}.pdf",
        csv=f"{R}/tables/strategies_{{dataset}}_{{model}}_{{aggregation}}.csv",
        md=f"{R}/tables/strategies_{{dataset}}_{{model}}_{{aggregation}}.md",
    params:
        x=REPORT["x"],
    log:
        f"{R}/logs/figure_strategies/{{dataset}}_{{model}}_{{aggregation}}.log",
    script:
        "../scripts/figure_strategies.py"


rule figure_easy_hard:
    input:
        lambda wc: [metrics_path(wc.dataset, wc.model, s) for s in ("greedy", "sampling", "rebase") if s in EVAL["strategies"]],
    output:
        png=f"{R}/figures/easy_hard_{{dataset}}_{{model}}.png",
        pdf=f"{R}/figures/easy_hard_{{dataset}}_{{model}}.pdf",
        csv=f"{R}/tables/easy_hard_{{dataset}}_{{model}}.csv",
        md=f"{R}/tables/easy_hard_{{dataset}}_{{model}}.md",
    params:
        x=REPORT["x"],
        aggregation=REPORT["compute_optimal_aggregation"],
    log:
        f"{R}/logs/figure_easy_hard/{{dataset}}_{{model}}.log",
    script:
        "../scripts/figure_easy_hard.py"


rule table1:
    input:
        lambda wc: [metrics_path(wc.dataset, m, s) for m in EVAL["models"] for s in ("sampling", "rebase")],
    output:
        csv=f"{R}/tables/table1_{{dataset}}.csv",
        md=f"{R}/tables/table1_{{dataset}}.md",
    params:
        x=REPORT["x"],
        aggregation=REPORT["compute_optimal_aggregation"],
        budgets=REPORT["table1"],
    log:
        f"{R}/logs/table1/{{dataset}}.log",
    script:
        "../scripts/table1.py"


# Named figures and tables (`figures:` in the config, e.g. the paper's): results/paper/<name>.*, each reading only
# the metrics of its own data sets, models and strategies.
PAPER_PLOTS = [n for n, f in FIGURES.items() if f["kind"] in PLOT_KINDS]
PAPER_TABLES = [n for n, f in FIGURES.items() if f["kind"] not in PLOT_KINDS]

if PAPER_PLOTS:

    rule paper_figure:
        localrule: True
        input:
            lambda wc: figure_metrics(wc.figure),
        output:
            png=f"{R}/paper/{{figure}}.png",
            pdf=f"{R}/paper/{{figure}}.pdf",
            csv=f"{R}/paper/{{figure}}.csv",
            md=f"{R}/paper/{{figure}}.md",
        wildcard_constraints:
            figure=one_of(PAPER_PLOTS),
        params:
            spec=lambda wc: FIGURES[wc.figure],
            x=REPORT["x"],
            table1=REPORT["table1"],
        log:
            f"{R}/logs/paper_figure/{{figure}}.log",
        script:
            "../scripts/paper_figure.py"


if PAPER_TABLES:

    rule paper_table:
        localrule: True
        input:
            lambda wc: figure_metrics(wc.figure),
        output:
            csv=f"{R}/paper/{{figure}}.csv",
            md=f"{R}/paper/{{figure}}.md",
        wildcard_constraints:
            figure=one_of(PAPER_TABLES),
        params:
            spec=lambda wc: FIGURES[wc.figure],
            x=REPORT["x"],
            table1=REPORT["table1"],
        log:
            f"{R}/logs/paper_table/{{figure}}.log",
        script:
            "../scripts/paper_figure.py"


rule paper:
    """Every named figure and table (`snakemake paper`): for the paper's config, the paper's figures and tables."""
    input:
        paper_targets(),
