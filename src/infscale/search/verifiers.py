"""The verifier a job scores with, by kind: a PRM checkpoint (search/prm_scoring.py) or a policy's likelihood
(search/policy_likelihood.py). Both score like a PRM: `score(questions, solutions) -> (per-step scores, tokens)`."""
from __future__ import annotations

from infscale.core.policy_format import PolicyFormat
from infscale.core.stepformat import STEP_TAG
from infscale.search.policy_likelihood import PolicyLikelihoodVerifier
from infscale.search.prm_scoring import ProcessRewardModel

KINDS = ("prm", "policy_likelihood")


def load_verifier(path: str, verifier: dict | None = None, fmt: PolicyFormat | None = None, **options):
    """`verifier` (core.config.verifier_params) None or kind prm: the PRM checkpoint at `path`; kind
    policy_likelihood: `path` is the policy, the calibration, token score and step reduction come with `verifier`.
    `fmt` is the format of the policy whose solutions it scores (None: the paper's)."""
    kind = (verifier or {}).get("kind", "prm")
    fmt = fmt or PolicyFormat()
    if kind == "prm":
        if fmt.step_delimiter != STEP_TAG:
            raise ValueError(f"{path}: a Math-Shepherd-style PRM scores at the step tag {STEP_TAG!r}, but the policy's "
                             f"steps end with {fmt.step_delimiter!r}; choose a verifier family that reads the "
                             "policy's steps (docs/own-models.md)")
        return ProcessRewardModel(path, **options)
    if kind == "policy_likelihood":
        return PolicyLikelihoodVerifier(path, a=verifier["a"], b=verifier["b"], token_score=verifier["token_score"],
                                        step_reduction=verifier["step_reduction"], fmt=fmt, **options)
    raise ValueError(f"unknown verifier kind {kind!r}; known: {', '.join(KINDS)}")
