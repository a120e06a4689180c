from infscale.core.runtime import job
from infscale.training.launch import train

p, inp = snakemake.params, snakemake.input
spec = {"kind": "prm", "data": inp.data, "tokenizer": inp.tokenizer or None, "init": inp.init or None,
        "arch": p.arch, "base": inp.base or p.base, "train": p.train, "seed": p.seed, "label": p.label,
        "out": snakemake.output[0], "threads": snakemake.threads}
with job(snakemake.log[0], snakemake.threads):
    print(train(spec, gpus=snakemake.resources.gpu))  # several GPUs: accelerate launch with FSDP
