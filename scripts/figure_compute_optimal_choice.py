from infscale.core.runtime import job
from infscale.reporting.choice import budgets, frontier_table, plot_frontier
from infscale.reporting.report import load_metrics, write_table

out, p = snakemake.output, snakemake.params
with job(snakemake.log[0]):
    numbers = frontier_table(load_metrics(snakemake.input), snakemake.wildcards.dataset, x=p.x)
    plot_frontier(numbers, out.png, out.pdf, x=p.x, grid=budgets(numbers), source=", ".join(snakemake.input))
    write_table(numbers, out.csv, out.md)
