from infscale.core.io import read_jsonl, write_jsonl
from infscale.core.policy_format import PolicyFormat
from infscale.core.runtime import job
from infscale.search.prm_scoring import check_pairing, score_records
from infscale.search.shards import discard
from infscale.search.verifiers import load_verifier

with job(snakemake.log[0], snakemake.threads):
    if snakemake.params.generation_shards:
        discard(snakemake.params.generation_shards)  # Snakemake has recorded the generate job as complete
    check_pairing(snakemake.input.policy, snakemake.input.prm)
    prm = load_verifier(snakemake.input.prm, snakemake.params.verifier, batch_size=snakemake.params.batch_size,
                        max_batch_tokens=snakemake.params.max_batch_tokens,
                        fmt=PolicyFormat(**snakemake.params.format))
    records = read_jsonl(snakemake.input.generations, required=("question", "candidates"))
    score_records(prm, records)
    write_jsonl(snakemake.output[0], records)
