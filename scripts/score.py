from infscale.io import read_jsonl, write_jsonl
from infscale.prm import ProcessRewardModel, check_pairing, score_records
from infscale.runtime import job

with job(snakemake.log[0], snakemake.threads):
    check_pairing(snakemake.input.policy, snakemake.input.prm)
    prm = ProcessRewardModel(snakemake.input.prm, batch_size=snakemake.params.batch_size)
    records = read_jsonl(snakemake.input.generations, required=("question", "candidates"))
    score_records(prm, records)
    write_jsonl(snakemake.output[0], records)
