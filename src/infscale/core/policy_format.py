"""A policy's format: how it is prompted, where its steps end, how its answer is read and what ends a path.

Configured per model (`models.<slug>.format`, docs/own-models.md); every key defaults to the paper's format, which
is what config.yaml and config/paper.yaml use:

    key             paper (default)         an instruct model (e.g. Qwen2.5-Math-Instruct)
    prompt          raw: question + "\\n"    chat: the tokenizer's own chat template (or a template with {question})
    system          none                    e.g. "Please reason step by step, and put your final answer
                                            within \\boxed{}."
    step_delimiter  "ки" (the step tag)     "\\n\\n"
    answer          answer_line             boxed
    stop            answer_line             eos

* `step_delimiter` ends a step: tree search stops each generated step at it (kept at the step's end, as the tag
  is today). The paper's steps end with the tag `ки`; the newline after it begins the next step.
* `answer`: `answer_line` reads "The answer is: X" (grading.candidate_answer), `boxed` the last \\boxed{X}.
* `stop`: a tree-search path is finished when it states its answer (`answer_line`) or when the policy ends it
  with end-of-text (`eos`). Sampling always generates to end-of-text (or the token limit).
* `split_steps` is the canonical list of a candidate's steps that verifier families read: the text split at the
  delimiter, each piece stripped, the trailing unfinished piece (the answer step) kept when not blank. For the
  paper's format these are exactly the pieces of `stepformat.split_steps`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from infscale.core.stepformat import STEP_TAG, format_prompt, is_finished

PROMPTS = ("raw", "chat")  # or a template string holding {question}
ANSWERS = ("answer_line", "boxed")
STOPS = ("answer_line", "eos")
QUESTION_FIELD = "{question}"


@dataclass(frozen=True)
class PolicyFormat:
    prompt: str = "raw"
    system: str | None = None
    step_delimiter: str = STEP_TAG
    answer: str = "answer_line"
    stop: str = "answer_line"

    def __post_init__(self):
        where = "config key models.<slug>.format"
        if self.prompt not in PROMPTS and QUESTION_FIELD not in self.prompt:
            raise ValueError(f"{where}.prompt: {self.prompt!r} is neither one of {', '.join(PROMPTS)} nor a template "
                             f"holding {QUESTION_FIELD}")
        if self.system is not None and self.prompt != "chat":
            raise ValueError(f"{where}.system: a system prompt needs prompt: chat (a template string holds its own)")
        if not self.step_delimiter:
            raise ValueError(f"{where}.step_delimiter: must not be empty")
        if self.answer not in ANSWERS:
            raise ValueError(f"{where}.answer: {self.answer!r}; known: {', '.join(ANSWERS)}")
        if self.stop not in STOPS:
            raise ValueError(f"{where}.stop: {self.stop!r}; known: {', '.join(STOPS)}")

    @classmethod
    def from_config(cls, block: dict | None) -> PolicyFormat:
        """The format of a model's `format` block (None or {}: the paper's)."""
        return cls(**(block or {}))

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def is_paper(self) -> bool:
        return self == PolicyFormat()

    def render_prompt(self, question: str, tokenizer=None) -> str:
        """The text the policy reads before its solution. A chat prompt is the tokenizer's own template with the
        generation prompt, special tokens written as text (the engines encode them as the special tokens)."""
        if self.prompt == "raw":
            return format_prompt(question)
        if self.prompt != "chat":
            return self.prompt.replace(QUESTION_FIELD, question.strip())
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            name = getattr(tokenizer, "name_or_path", None) or "the policy's tokenizer"
            raise ValueError(f"format prompt: chat needs a chat template, and {name} has none; give prompt as a "
                             f"template string holding {QUESTION_FIELD} instead")
        messages = ([{"role": "system", "content": self.system}] if self.system is not None else []) + [
            {"role": "user", "content": question.strip()}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def split_steps(self, text: str) -> list[str]:
        """The canonical steps of a solution: split at the delimiter, each stripped; the trailing piece is a step
        when it is not blank (an answer step ended by end-of-text)."""
        pieces = text.split(self.step_delimiter)
        steps = pieces[:-1] + ([pieces[-1]] if pieces[-1].strip() else [])
        return [s.strip() for s in steps]

    def step_ends(self, text: str) -> list[int]:
        """The character offset where each step of `split_steps(text)` ends: after its delimiter, or, for a
        trailing step without one, after its last non-blank character."""
        ends, start = [], 0
        while (i := text.find(self.step_delimiter, start)) >= 0:
            start = i + len(self.step_delimiter)
            ends.append(start)
        if text[start:].strip():
            ends.append(len(text.rstrip()))
        return ends

    def states_answer(self, text: str) -> bool:
        """Whether a path states its answer, as `answer` reads it."""
        if self.answer == "boxed":
            from infscale.core.grading import has_boxed

            return has_boxed(text)
        return is_finished(text)

    def candidate_answer(self, text: str, finish_reason: str | None, grader: str) -> str | None:
        from infscale.core.grading import boxed_candidate_answer, candidate_answer, grader_kind

        if self.answer == "boxed" and grader_kind(grader) != "code":  # code: the program (candidate_answer)
            return boxed_candidate_answer(text, grader)
        return candidate_answer(text, finish_reason, grader)


def policy_format(config: dict, model: str) -> PolicyFormat:
    """The format of a configured model, its errors naming the config key."""
    block = config["models"][model].get("format")
    try:
        return PolicyFormat.from_config(block)
    except (TypeError, ValueError) as e:
        raise ValueError(str(e).replace("models.<slug>", f"models.{model}")) from None
