from infscale.core.runtime import job
from infscale.reporting.plotting import plot_strategies
from infscale.reporting.report import load_metrics, seed_summary, write_table

out, wc = snakemake.output, snakemake.wildcards
with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=snakemake.params.x)
    numbers = plot_strategies(summary, wc.dataset, wc.model, wc.aggregation, out.png, out.pdf, x=snakemake.params.x,
                              source=", ".join(snakemake.input))
    write_table(numbers, out.csv, out.md)
