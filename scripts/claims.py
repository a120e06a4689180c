from infscale.core.runtime import job
from infscale.reporting.claims import Settings, evaluate, load_problems, write_claims
from infscale.reporting.report import load_metrics

p, out = snakemake.params, snakemake.output
with job(snakemake.log[0]):
    claims, units = evaluate(load_metrics(snakemake.input.metrics), load_problems(snakemake.input.problems),
                             Settings(x=p.x, **p.claims))
    write_claims(claims, out.claims)
    write_claims(units, out.units)
