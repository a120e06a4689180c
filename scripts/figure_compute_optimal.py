from infscale.core.runtime import job
from infscale.reporting.plotting import plot_compute_optimal
from infscale.reporting.report import load_metrics, seed_summary, write_table

out, p = snakemake.output, snakemake.params
with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=p.x)
    numbers = plot_compute_optimal(summary, snakemake.wildcards.dataset, p.strategy, p.aggregation, out.png, out.pdf,
                                   x=p.x, source=", ".join(snakemake.input))
    write_table(numbers, out.csv, out.md)
