# The verifiers' quality report: how well the study's verifier and each ablation verifier rank each policy's sampled
# candidates, how calibrated they are, and (toy task) how well a PRM's Math-Shepherd training labels agree with exact
# step correctness.


rule prm_quality:
    input:
        scored=[f for _, _, _, files in prm_quality_groups() for f in files],
        prm_data=list(prm_label_data().values()),
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
        prm_data=prm_label_data(),
        graders={d: grader(d) for d in EVAL["datasets"]},
        toy_datasets=[d for d in EVAL["datasets"] if config["datasets"][d]["source"] == "toy"],
    script:
        "../scripts/prm_quality.py"
