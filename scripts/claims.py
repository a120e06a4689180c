from infscale.claims import evaluate_claims, write_claims
from infscale.report import load_metrics
from infscale.runtime import job

with job(snakemake.log[0]):
    write_claims(evaluate_claims(load_metrics(snakemake.input), x=snakemake.params.x), snakemake.output[0])
