from infscale.core.runtime import job
from infscale.reporting.coverage import coverage_fit_table
from infscale.reporting.report import load_metrics, write_table

with job(snakemake.log[0]):
    write_table(coverage_fit_table(load_metrics(snakemake.input)), snakemake.output.csv, snakemake.output.md)
