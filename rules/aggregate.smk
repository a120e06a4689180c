# Metrics: accuracy per (n, seed, aggregation, subset) and FLOPs per question, one CSV per strategy, and each
# problem's outcome per (n, seed, aggregation) beside it (<strategy>.problems.csv: the claims' bootstrap).


rule metrics:
    input:
        scored=checked(lambda wc: [path for path, _, _ in scored_runs(wc.dataset, wc.model, wc.strategy)]),
        policy=lambda wc: policy_dir(wc.model),
        prm=prm_dir(),
    output:
        csv=f"{R}/metrics/{{dataset}}/{{model}}/{{strategy}}.csv",
        problems=f"{R}/metrics/{{dataset}}/{{model}}/{{strategy}}.problems.csv",
    log:
        f"{R}/logs/metrics/{{dataset}}_{{model}}_{{strategy}}.log",
    conda:
        CONDA_ENV
    params:
        runs=lambda wc: [(seed, served) for _, seed, served in scored_runs(wc.dataset, wc.model, wc.strategy)],
        aggregations=EVAL["aggregations"],
        reduction=EVAL["reduction"],
        grader=lambda wc: grader(wc.dataset),
    script:
        "../scripts/metrics.py"
