"""The verifier a job scores with, by kind: a PRM checkpoint read by its family (search/prm_scoring.py for
math_shepherd, search/prm_families.py for the released families) or a policy's likelihood
(search/policy_likelihood.py). All score like a PRM: `score(questions, solutions) -> (per-step scores, tokens)`."""
from __future__ import annotations

from infscale.core.codesteps import split_steps as split_code_steps
from infscale.search.policy_likelihood import PolicyLikelihoodVerifier
from infscale.search.prm_families import DEFAULT_FAMILY, FamilyVerifier
from infscale.search.prm_scoring import ProcessRewardModel

KINDS = ("prm", "policy_likelihood")


def code_steps(solution: str) -> list[str]:
    """A code candidate's steps as a PRM reads them: its logical lines, indentation kept, blank ones left out."""
    return [s.rstrip("\n") for s in split_code_steps(solution) if s.strip()]


def load_verifier(path: str, verifier: dict | None = None, **options):
    """`verifier` (core.config.verifier_params) None or kind prm: the PRM checkpoint at `path`, read by its
    `family` (default math_shepherd; the others take `trust_remote_code`, `system_prompt`, `step_separator`); kind
    policy_likelihood: `path` is the policy, the calibration, token score and step reduction come with `verifier`.
    `options` may hold `split_steps`, the policy format's canonical steps of a candidate; on code (`steps: code`)
    a PRM reads the candidate's logical lines (core/codesteps.py)."""
    verifier = verifier or {}
    kind = verifier.get("kind", "prm")
    steps = verifier.get("steps", "tag")  # code: steps end with logical lines (core/codesteps.py)
    if kind == "prm":
        if steps == "code":
            options.setdefault("split_steps", code_steps)
        family = verifier.get("family", DEFAULT_FAMILY)
        if family == DEFAULT_FAMILY:
            return ProcessRewardModel(path, **options)
        extra = {k: verifier[k] for k in ("trust_remote_code", "system_prompt", "step_separator") if k in verifier}
        return FamilyVerifier(path, family, **extra, **options)
    if kind == "policy_likelihood":
        return PolicyLikelihoodVerifier(path, a=verifier["a"], b=verifier["b"], token_score=verifier["token_score"],
                                        step_reduction=verifier["step_reduction"], steps=steps, **options)
    raise ValueError(f"unknown verifier kind {kind!r}; known: {', '.join(KINDS)}")
