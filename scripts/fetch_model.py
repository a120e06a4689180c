from infscale.core.models import fetch_checkpoint
from infscale.core.runtime import job

with job(snakemake.log[0]):
    print(fetch_checkpoint(snakemake.params.source, snakemake.output[0]))
