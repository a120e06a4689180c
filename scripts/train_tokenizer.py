from infscale.data import training_texts
from infscale.io import read_jsonl
from infscale.runtime import job
from infscale.tokenizer import train_tokenizer

with job(snakemake.log[0]):
    texts = training_texts(read_jsonl(snakemake.input[0], required=("question", "solution")))
    train_tokenizer(texts, snakemake.output[0], vocab_size=snakemake.params.vocab_size)
