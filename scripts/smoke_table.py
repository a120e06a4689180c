from infscale.core.runtime import job
from infscale.smoke import write_table

with job(snakemake.log[0], gpus=0):
    print(write_table(list(snakemake.input), snakemake.output[0]))
