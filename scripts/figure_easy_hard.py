from infscale.core.runtime import job
from infscale.reporting.plotting import plot_easy_hard
from infscale.reporting.report import load_metrics, seed_summary, write_table

out, wc, p = snakemake.output, snakemake.wildcards, snakemake.params
with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=p.x)
    numbers = plot_easy_hard(summary, wc.dataset, wc.model, p.aggregation, out.png, out.pdf, x=p.x,
                             source=", ".join(snakemake.input))
    write_table(numbers, out.csv, out.md)
