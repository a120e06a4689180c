"""A verifier read off a policy's own causal-LM head: no training, the embedded default's verifier.

The paper's verifier (a Llemma-34B PRM) is stronger than its 7B policies. On the toy task a PRM trained on
Math-Shepherd labels cannot be made that strong at CPU scale (docs/default-study.md), but the strongest policy
already knows which tokens a right step has: a step the policy finds unlikely is a slip. So

    x_k   = the lowest token score of step k's tokens (from the token after the previous step tag through its own tag),
    m_k   = min(x_1, ..., x_k)                      (a prefix stays wrong once it is, as Math-Shepherd's labels),
    score = sigmoid(a + b * m_k)                    (a fixed calibration: one probability per step tag, like a PRM).

With `step_reduction: sum`, x_k is the sum of step k's token scores and m_k = x_1 + ... + x_k, the prefix's
log-likelihood: it falls at every step too, and counts every doubtful token, not only the worst.

The token score is the policy's log-probability of the token (`token_score: logprob`), or that minus the
log-probability of the policy's most likely token at that position (`margin`: a step that takes one of several
equally valid operations is not penalised for the choice). The last step's score is the minimum over steps, so
the `last` and `min` reductions agree. The tokenizer's leading special tokens (its BOS, where it adds one), the prompt
and the solution are encoded separately and concatenated, as SFT trained the policy (training/sft.encode_sft_example).

The prompt is the policy's own (its format, core/policy_format.py: the paper's raw question, or its chat template);
in another format than the paper's a step ends at the format's delimiter (the last token covering it), and a
trailing step without one at its last token.
"""
from __future__ import annotations

import math
from typing import Sequence

from infscale.core.codesteps import step_ends
from infscale.core.policy_format import PolicyFormat
from infscale.core.stepformat import STEP_TAG, close_last_step
from infscale.search.engine_base import encode_prompt
from infscale.search.prm_scoring import (
    check_steps,
    inference_dtype,
    normalise_step_tags,
    tag_ends,
    token_positions_many,
)

TOKEN_SCORES = ("logprob", "margin")
STEP_REDUCTIONS = ("min", "sum")


def step_totals(token_scores: Sequence[float], tag_positions: Sequence[int], reduction: str = "min") -> list[float]:
    """The lowest (or summed) token score of each step: step k covers the tokens after tag k-1 (from the first
    one) through tag k, positions counted within the solution."""
    out, start = [], 0
    for end in tag_positions:
        piece = token_scores[start : end + 1]
        # a step that shares its last token with the step before (two delimiters in one token) adds no token
        out.append((min(piece) if reduction == "min" else sum(piece)) if piece else 0.0)
        start = end + 1
    return out


def calibrated(step_scores: Sequence[float], a: float, b: float, reduction: str = "min") -> list[float]:
    """sigmoid(a + b * m_k) per step, m_k the running minimum (or running sum) of the step scores."""
    out, running = [], math.inf if reduction == "min" else 0.0
    for x in step_scores:
        running = min(running, x) if reduction == "min" else running + x
        z = a + b * running
        out.append(1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0)
    return out


class PolicyLikelihoodVerifier:
    """Scores solutions like a PRM (`score(questions, solutions) -> (per-step scores, tokens read)`) from a
    policy checkpoint's causal-LM head (see the module doc)."""

    def __init__(self, path: str, a: float = 4.0, b: float = 1.0, token_score: str = "logprob",
                 step_reduction: str = "min", batch_size: int = 64, threads: int | None = None,
                 device: str | None = None, max_batch_tokens: int | None = None, dtype=None,
                 fmt: PolicyFormat | None = None, steps: str = "tag"):
        import torch

        from infscale.core.models import leading_special_ids, load_for_inference

        if token_score not in TOKEN_SCORES:
            raise ValueError(f"config key prm.token_score: {token_score!r}; known: {', '.join(TOKEN_SCORES)}")
        if step_reduction not in STEP_REDUCTIONS:
            raise ValueError(f"config key prm.step_reduction: {step_reduction!r}; known: {', '.join(STEP_REDUCTIONS)}")
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer, self.model, self.device = load_for_inference(
            path, "AutoModelForCausalLM", "right", threads, device, dtype=dtype or inference_dtype(device))
        self.a, self.b, self.token_score, self.step_reduction = float(a), float(b), token_score, step_reduction
        self.prefix = leading_special_ids(self.tokenizer)  # its BOS, where it adds one, as SFT trained it
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.reading = f"policy_likelihood/{token_score}/{step_reduction}"
        self.fmt = fmt or PolicyFormat()
        self.steps = check_steps(steps)  # code: a step ends with its logical line (core/codesteps.py)

    def encode(self, question: str, solution: str) -> tuple[list[int], int, list[int]]:
        """(token ids of prompt + solution, where the solution starts, its step tags' positions in the solution),
        cut from the left of the prompt when longer than the policy's context."""
        return self.encode_many([question], [solution])[0]

    def encode_many(self, questions: Sequence[str], solutions: Sequence[str]) -> list[tuple[list[int], int, list[int]]]:
        """encode() of each pair: a question's prompt encoded once, the solutions in one tokenizer call (a tree
        search scores hundreds of paths of one question at each depth)."""
        tok, fmt = self.tokenizer, self.fmt
        prompts = {q: encode_prompt(tok, self.prefix, fmt.render_prompt(q, tok)) for q in dict.fromkeys(questions)}
        if self.steps == "code":
            texts, ends = list(solutions), [step_ends(s) for s in solutions]
        elif fmt.step_delimiter == STEP_TAG:  # the paper's steps, scored as SFT trained the policy
            texts = [normalise_step_tags(close_last_step(s)) for s in solutions]
            ends = [tag_ends(t) for t in texts]
        else:
            texts, ends = list(solutions), [fmt.step_ends(s) for s in solutions]
        out = []
        for q, (solution_ids, tags) in zip(questions, token_positions_many(tok, texts, ends)):
            prompt = prompts[q]
            prompt = prompt[max(0, len(prompt) + len(solution_ids) - self.context_length):] or prompt[-1:]
            out.append((prompt + solution_ids, len(prompt), tags))
        return out

    def token_scores(self, rows: list[tuple[list[int], int]]) -> list[list[float]]:
        """Per row (ids, solution start): the score of every solution token given all before it. Prefixes the rows
        share (a problem's prompt; a tree node's siblings' path) are read once (search/prefix_scoring.py)."""
        import torch

        from infscale.search.prefix_scoring import forward_at

        def read(logits):  # rows x positions x vocab: log-probabilities, less the best one's for margin
            logp = torch.log_softmax(logits.float(), dim=-1)
            return logp - logp.max(-1, keepdim=True).values if self.token_score == "margin" else logp

        # the logits at position t - 1 give token t's probability
        positions = [list(range(start - 1, len(ids) - 1)) for ids, start in rows]
        return forward_at(self.model, [ids for ids, _ in rows], positions, self.tokenizer.pad_token_id, self.device,
                          read, self.batch_size, self.max_batch_tokens, pick=[ids[start:] for ids, start in rows])

    def raw_step_scores(self, questions: Sequence[str], solutions: Sequence[str]) -> tuple[list[list[float]],
                                                                                         list[int]]:
        """Each step's lowest (or summed) token score, before the running reduction and the calibration; tokens
        read."""
        encoded = self.encode_many(questions, solutions)
        scores = self.token_scores([(ids, start) for ids, start, _ in encoded])
        steps = [step_totals(s, tags, self.step_reduction) if tags else [] for s, (_, _, tags) in zip(scores, encoded)]
        return steps, [len(ids) for ids, _, _ in encoded]

    def score(self, questions: Sequence[str], solutions: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        raw, tokens = self.raw_step_scores(questions, solutions)
        return [calibrated(s, self.a, self.b, self.step_reduction) for s in raw], tokens
