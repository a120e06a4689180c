"""Scripted stand-ins for an engine and a PRM, for tree-search tests whose outcomes must be known exactly."""
from __future__ import annotations

import re
from collections import Counter

from infscale.core.stepformat import STEP_TAG, format_prompt
from infscale.search.engine_base import Completion, Generation

TAG = STEP_TAG


class ScriptedEngine:
    """Steps from `step(question, path, depth, sibling) -> (text, tokens, finish_reason)`; `sibling` counts
    repeats of the same prompt in one call. Prompt tokens = words of the prompt."""

    def __init__(self, step):
        self.step, self.calls = step, []

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        seen, out = Counter(), []
        for p in prompts:
            question, path = p.split("\n", 1)
            text, tokens, reason = self.step(question, path, path.count(TAG) + 1, seen[p])
            seen[p] += 1
            out.append(Generation(prompt_tokens=len(p.split()), completions=[Completion(text, tokens, reason)]))
        return out


class ScriptedPRM:
    """One score per step: the number written as `r=X` in the step; tokens read = characters."""

    def __init__(self):
        self.calls = []

    def score(self, questions, solutions):
        self.calls.append(list(solutions))
        scores = [[float(x) for x in re.findall(r"r=(\S+)", s)] for s in solutions]
        return scores, [len(format_prompt(q) + s) for q, s in zip(questions, solutions)]


class LengthPRM:
    """A reward that depends on the generated text (length mod 10), so allocation follows the generations."""

    def score(self, questions, solutions):
        return [[(len(s) % 10) / 10] * s.count(TAG) for s in solutions], [len(s) for s in solutions]
