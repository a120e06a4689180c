from infscale.core.data import training_texts
from infscale.core.io import read_jsonl
from infscale.core.runtime import job
from infscale.training.tokenizer import train_tokenizer

with job(snakemake.log[0]):
    rows = read_jsonl(snakemake.input[0], required=("question", "solution"))
    code = all("tests" in r for r in rows)  # a code task (toy_code): a newline is a token of its own
    train_tokenizer(training_texts(rows), snakemake.output[0], vocab_size=snakemake.params.vocab_size,
                    newline_token=code)
