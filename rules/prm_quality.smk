# The verifier's quality report: how well the PRM ranks each policy's sampled candidates, how calibrated it is,
# and (toy task) how well its Math-Shepherd training labels agree with exact step correctness.


rule prm_quality:
    input:
        scored=[f for _, _, files in prm_quality_groups() for f in files],
        prm_data=prm_label_data(),
    output:
        **figure_outputs(
            "prm_quality",
            caption="../report/prm_quality.rst",
            category="Verifier",
            table_caption="../report/prm_quality.rst",
            table_category="Verifier",
        ),
    log:
        f"{R}/logs/prm_quality.log",
    conda:
        CONDA_ENV
    params:
        groups=prm_quality_groups(),
        graders={d: grader(d) for d in EVAL["datasets"]},
    script:
        "../scripts/prm_quality.py"
