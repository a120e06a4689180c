from infscale.core.io import read_jsonl, write_text
from infscale.core.runtime import job
from infscale.reporting.prm_quality import plot_quality, quality_tables, to_markdown
from infscale.reporting.report import atomic_write_csv
from infscale.search.shards import discard, shard_dir_of

p, inp, out = snakemake.params, snakemake.input, snakemake.output
with job(snakemake.log[0]):
    for f in inp.scored:
        discard(shard_dir_of(f))  # Snakemake has recorded the score jobs as complete
    scored = {(v, d, m): [read_jsonl(f, required=("id", "reference", "candidates")) for f in files]
              for v, d, m, files in p.groups}
    prm_rows = {v: read_jsonl(f, required=("input", "label")) for v, f in p.prm_data.items()}
    quality, calibration, labels = quality_tables(scored, p.graders, prm_rows, set(p.toy_datasets))
    atomic_write_csv(quality, out.csv)
    write_text(out.md, to_markdown(quality, calibration, labels))
    plot_quality(quality, calibration, out.png, out.pdf, source=", ".join(f for _, _, _, fs in p.groups for f in fs))
    print(quality.to_string())
