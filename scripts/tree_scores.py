from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.runtime import job
from infscale.search.prm_scoring import require_search_scores
from infscale.search.shards import discard

with job(snakemake.log[0], gpus=0):
    discard(snakemake.params.generation_shards)  # Snakemake has recorded the generate job as complete
    records = read_jsonl(snakemake.input.generations, required=("question", "candidates"))
    require_search_scores(records, snakemake.input.generations)
    write_jsonl(snakemake.output[0], records)
