from infscale.models import fetch_checkpoint
from infscale.runtime import job

with job(snakemake.log[0]):
    print(fetch_checkpoint(snakemake.params.source, snakemake.output[0]))
