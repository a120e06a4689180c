"""The verifier a job scores with, by kind: a PRM checkpoint (search/prm_scoring.py) or a policy's likelihood
(search/policy_likelihood.py). Both score like a PRM: `score(questions, solutions) -> (per-step scores, tokens)`."""
from __future__ import annotations

from infscale.search.policy_likelihood import PolicyLikelihoodVerifier
from infscale.search.prm_scoring import ProcessRewardModel

KINDS = ("prm", "policy_likelihood")


def load_verifier(path: str, verifier: dict | None = None, **options):
    """`verifier` (core.config.verifier_params) None or kind prm: the PRM checkpoint at `path`; kind
    policy_likelihood: `path` is the policy, the calibration, token score and step reduction come with `verifier`."""
    kind = (verifier or {}).get("kind", "prm")
    steps = (verifier or {}).get("steps", "tag")  # code: steps end with logical lines (core/codesteps.py)
    if kind == "prm":
        return ProcessRewardModel(path, steps=steps, **options)
    if kind == "policy_likelihood":
        return PolicyLikelihoodVerifier(path, a=verifier["a"], b=verifier["b"], token_score=verifier["token_score"],
                                        step_reduction=verifier["step_reduction"], steps=steps, **options)
    raise ValueError(f"unknown verifier kind {kind!r}; known: {', '.join(KINDS)}")
