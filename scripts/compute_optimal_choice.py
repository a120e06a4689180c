from infscale.core.runtime import job
from infscale.reporting.choice import compute_optimal_choice, write_choice
from infscale.reporting.claims import load_problems
from infscale.reporting.report import load_metrics

p, out = snakemake.params, snakemake.output
with job(snakemake.log[0]):
    table = compute_optimal_choice(load_metrics(snakemake.input.metrics), load_problems(snakemake.input.problems),
                                   x=p.x, draws=p.claims["draws"], seed=p.claims["seed"])
    write_choice(table, out.csv, out.md, x=p.x)
