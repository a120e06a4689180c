import pandas as pd

from infscale.core.io import read_jsonl
from infscale.core.runtime import job
from infscale.evaluation.evaluation import metrics_rows, model_shape, outcomes, problem_rows
from infscale.reporting.report import atomic_write_csv
from infscale.search.shards import discard, shard_dir_of

p, wc = snakemake.params, snakemake.wildcards
with job(snakemake.log[0]):
    policy, prm = model_shape(snakemake.input.policy), model_shape(snakemake.input.prm)
    rows, problems = [], []
    for (seed, budgets), path in zip(p.runs, snakemake.input.scored):
        discard(shard_dir_of(path))  # Snakemake has recorded the score job as complete
        records = read_jsonl(path)
        graded = outcomes(records, budgets, p.aggregations, p.grader, p.reduction)  # each problem graded once
        common = dict(dataset=wc.dataset, model=wc.model, strategy=wc.strategy, seed=seed, budgets=budgets,
                      aggregations=p.aggregations, reduction=p.reduction, grader=p.grader, graded=graded)
        rows += metrics_rows(records, **common, policy=policy, prm=prm)
        problems += problem_rows(records, **common)
    atomic_write_csv(pd.DataFrame(rows), snakemake.output.csv)
    atomic_write_csv(pd.DataFrame(problems), snakemake.output.problems)
