from infscale.core.data import training_texts
from infscale.core.io import read_jsonl
from infscale.core.runtime import job
from infscale.training.tokenizer import train_tokenizer

with job(snakemake.log[0]):
    texts = training_texts(read_jsonl(snakemake.input[0], required=("question", "solution")))
    train_tokenizer(texts, snakemake.output[0], vocab_size=snakemake.params.vocab_size)
