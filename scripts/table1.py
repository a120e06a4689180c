from infscale.report import load_metrics, seed_summary, write_table
from infscale.runtime import job
from infscale.tables import table1

with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=snakemake.params.x)
    write_table(table1(summary, x=snakemake.params.x, aggregation=snakemake.params.aggregation),
                snakemake.output.csv, snakemake.output.md)
