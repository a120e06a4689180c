from infscale.core.runtime import job
from infscale.reporting.report import load_metrics, seed_summary, write_table
from infscale.reporting.tables import table1

with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=snakemake.params.x)
    p = snakemake.params
    write_table(table1(summary, x=p.x, aggregation=p.aggregation, sampling_n=p.budgets["sampling_budget"],
                       rebase_n=p.budgets["rebase_budget"], beam_search_n=p.budgets["beam_search_budget"],
                       dvts_n=p.budgets["dvts_budget"]),
                snakemake.output.csv, snakemake.output.md)
