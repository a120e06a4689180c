from infscale.core.data import prepare_split
from infscale.core.runtime import job

with job(snakemake.log[0]):
    prepare_split(snakemake.params.dataset, snakemake.wildcards.split, snakemake.output[0])
