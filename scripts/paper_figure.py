from infscale.core.runtime import job
from infscale.reporting.figures import make_figure
from infscale.reporting.report import load_metrics

out, p = snakemake.output, snakemake.params
with job(snakemake.log[0]):
    make_figure(load_metrics(snakemake.input), snakemake.wildcards.figure, p.spec, x=p.x, csv=out.csv, md=out.md,
                png=out.get("png"), pdf=out.get("pdf"), source=", ".join(snakemake.input), table1_budgets=p.table1)
