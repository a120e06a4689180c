"""Steps of a code solution: one logical line each (docs/code-study.md).

A newline ends a step unless the code before it is still open: inside brackets, inside a triple-quoted string,
or after a backslash continuation (Python's own tokenizer decides, so `(1,\\n 2)` is one step). Code a model is
still writing is often unfinished or wrong; the rule never raises: a line the tokenizer rejects (a bad dedent,
an unterminated one-line string) ends its step, and execution grades it later.

A chat model may wrap its code in a markdown fence (```python ... ```): only the text after an opening fence is
code; outside a fence (prose, the fence lines themselves) every newline ends a step. Text without any fence is
code throughout (the toy task's policies write bare programs).

Tree search generates a code step by stopping at each newline and generating on while `is_open` says the
logical line goes on (treesearch.expand), up to `max_step_tokens`; verifiers score a solution at `step_ends`.
"""
from __future__ import annotations

import io
import re
import tokenize

from infscale.core.stepformat import STEP_TAG

NEWLINE = "\n"
_FENCE = re.compile(r"^[ \t]*```", re.MULTILINE)
_FENCED = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def code_tail(text: str) -> str | None:
    """The code the text is writing now: after the last opening fence when a fence is open, all of it when the
    text has no fence; None when it is outside a fence (prose)."""
    fences = list(_FENCE.finditer(text))
    if not fences:
        return text
    if len(fences) % 2 == 0:
        return None
    line_end = text.find(NEWLINE, fences[-1].start())
    return "" if line_end < 0 else text[line_end + 1 :]


def is_open(code: str) -> bool:
    """Whether `code` ends inside a logical line: an open bracket, an open triple-quoted string or a backslash
    continuation. Never raises: anything the tokenizer rejects otherwise counts as a finished line."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO(code).readline):
            pass
    except tokenize.TokenError as e:  # "EOF in multi-line statement / string" (3.12: "unterminated triple-quoted")
        message = str(e.args[0] if e.args else e)
        return "EOF" in message or "triple-quoted" in message
    except (SyntaxError, ValueError):  # IndentationError and friends: a wrong line, but a finished one
        return False
    return False


def ends_step(text: str) -> bool:
    """Whether `text` (a solution so far, ending with a newline) ends a step there."""
    code = code_tail(text)
    return code is None or not is_open(code)


def step_ends(text: str) -> list[int]:
    """Character offset after each step of `text`: after every newline that ends a step, and at the end of a
    trailing step without one (its last non-blank character) when it is not blank."""
    ends = [i + 1 for i, ch in enumerate(text) if ch == NEWLINE and ends_step(text[: i + 1])]
    start = ends[-1] if ends else 0
    if text[start:].strip():
        ends.append(len(text.rstrip()))
    return ends


def split_steps(text: str) -> list[str]:
    """The steps of a code solution (logical lines, each with its newline; a trailing unfinished one kept)."""
    out, start = [], 0
    for end in step_ends(text):
        out.append(text[start:end])
        start = end
    return out


def extract_program(text: str | None) -> str | None:
    """The program a candidate wrote: the first markdown-fenced block (an unclosed one runs to the end), else
    the whole text; step tags removed. None when nothing but whitespace is left."""
    if not isinstance(text, str):
        return None
    fenced = _FENCED.search(text)
    program = fenced.group(1) if fenced else text
    program = program.replace(STEP_TAG, "")
    return program if program.strip() else None
