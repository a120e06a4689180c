# The verifier's quality report: how well the PRM ranks each policy's sampled candidates, how calibrated it is,
# and (toy task) how well its Math-Shepherd training labels agree with exact step correctness.


def prm_quality_groups():
    """[(dataset, model, scored files)]: the largest sampling run of each, every seed (smaller budgets are its
    first candidates)."""
    return [
        (d, m, [f for f, _, served in scored_runs(d, m, "sampling") if max(served) == max(cfg.budgets(config, m, "sampling"))])
        for d in EVAL["datasets"]
        for m in EVAL["models"]
    ]


def prm_quality_targets():
    if "sampling" not in EVAL["strategies"]:
        return []
    return [f"{R}/tables/prm_quality.csv", f"{R}/tables/prm_quality.md", f"{R}/figures/prm_quality.png",
            f"{R}/figures/prm_quality.pdf"]


def prm_label_data():
    """The PRM's own training rows, when they are toy-task rollout labels (exact step correctness is known)."""
    p = config["prm"]
    if p["source"] == "rollouts" and config["datasets"][p["dataset"]]["source"] == "toy":
        return f"{R}/prm_data/{PRM}.jsonl"
    return []


rule prm_quality:
    input:
        scored=[f for _, _, files in prm_quality_groups() for f in files],
        prm_data=prm_label_data(),
    output:
        csv=f"{R}/tables/prm_quality.csv",
        md=f"{R}/tables/prm_quality.md",
        png=f"{R}/figures/prm_quality.png",
        pdf=f"{R}/figures/prm_quality.pdf",
    params:
        groups=prm_quality_groups(),
        graders={d: grader(d) for d in EVAL["datasets"]},
    log:
        f"{R}/logs/prm_quality.log",
    script:
        "../scripts/prm_quality.py"
