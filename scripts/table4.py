from infscale.core.runtime import job
from infscale.reporting.report import load_metrics, seed_summary, write_table
from infscale.reporting.tables import table4

with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=snakemake.params.x)
    write_table(table4(summary, x=snakemake.params.x), snakemake.output.csv, snakemake.output.md)
