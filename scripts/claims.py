from infscale.core.runtime import job
from infscale.reporting.claims import Settings, evaluate_claims, load_problems, write_claims
from infscale.reporting.report import load_metrics

p = snakemake.params
with job(snakemake.log[0]):
    claims = evaluate_claims(load_metrics(snakemake.input.metrics), load_problems(snakemake.input.problems),
                             Settings(x=p.x, **p.claims))
    write_claims(claims, snakemake.output[0])
