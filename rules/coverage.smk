# Coverage scaling: log(coverage) = a k^b per (dataset, model), fitted on sampling's coverage (Brown et al. 2024).


rule coverage_fit:
    input:
        [metrics_path(d, m, "sampling") for d in EVAL["datasets"] for m in EVAL["models"]],
    output:
        csv=report(
            f"{R}/tables/coverage_fit.csv",
            caption="../report/coverage_fit.rst",
            category="Tables",
            subcategory="Coverage",
        ),
        md=f"{R}/tables/coverage_fit.md",
    log:
        f"{R}/logs/coverage_fit.log",
    conda:
        CONDA_ENV
    script:
        "../scripts/coverage_fit.py"
