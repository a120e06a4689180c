import pandas as pd

from infscale.evaluation import metrics_rows, model_shape
from infscale.io import read_jsonl
from infscale.report import atomic_write_csv
from infscale.runtime import job

p, wc = snakemake.params, snakemake.wildcards
with job(snakemake.log[0]):
    policy, prm = model_shape(snakemake.input.policy), model_shape(snakemake.input.prm)
    rows = []
    for (seed, budgets), path in zip(p.runs, snakemake.input.scored):
        rows += metrics_rows(read_jsonl(path), dataset=wc.dataset, model=wc.model, strategy=wc.strategy, seed=seed,
                             budgets=budgets, aggregations=p.aggregations, reduction=p.reduction, grader=p.grader,
                             policy=policy, prm=prm)
    atomic_write_csv(pd.DataFrame(rows), snakemake.output[0])
