from infscale.core.runtime import job
from infscale.smoke import smoke_training

p, inp = snakemake.params, snakemake.input
spec = {**p.spec, "data": inp.data, "tokenizer": inp.tokenizer or None, "init": None,
        "base": inp.base or p.spec["base"], "out": None, "threads": snakemake.threads}
spec = {k: v for k, v in spec.items() if k != "label" or spec["kind"] == "prm"}
with job(snakemake.log[0], snakemake.threads):
    print(smoke_training(spec, snakemake.resources.gpu, snakemake.output[0], p.estimate))
