from infscale.core.runtime import job
from infscale.reporting.plotting import plot_error_vs_flops
from infscale.reporting.report import load_metrics, seed_summary, write_table

out, wc = snakemake.output, snakemake.wildcards
with job(snakemake.log[0]):
    summary = seed_summary(load_metrics(snakemake.input), x=snakemake.params.x)
    numbers = plot_error_vs_flops(summary, wc.dataset, wc.model, out.png, out.pdf, x=snakemake.params.x,
                                  source=", ".join(snakemake.input))
    write_table(numbers, out.csv, out.md)
