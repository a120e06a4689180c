"""The Math-Shepherd step format shared by policies, PRMs and graders.

A solution is a sequence of steps, each ending with the step tag, then the answer line:

    Step 1: 37 + 5 = 42 ки
    Step 2: 42 - 8 = 34 ки
    The answer is: 34 ки

The policy's step separator and the PRM's step tag must be the same string: `check_step_tag_agreement`
refuses a pairing that disagrees (the most common silent failure of peer tools).
"""
from __future__ import annotations

STEP_TAG = "ки"
ANSWER_PREFIX = "The answer is:"


def format_prompt(question: str) -> str:
    """Prompt given to the policy: the question and a newline; the solution follows."""
    return question.strip() + "\n"


def format_solution(steps: list[str], answer: str, tag: str = STEP_TAG) -> str:
    lines = [f"Step {i}: {s} {tag}" for i, s in enumerate(steps, start=1)]
    lines.append(f"{ANSWER_PREFIX} {answer} {tag}")
    return "\n".join(lines)


def split_steps(solution: str, tag: str = STEP_TAG) -> list[str]:
    """Steps of a solution, each including its tag; a trailing unfinished piece is kept as a step."""
    pieces = solution.split(tag)
    steps = [p + tag for p in pieces[:-1]]
    if pieces[-1].strip():
        steps.append(pieces[-1])
    return steps


def close_last_step(text: str, tag: str = STEP_TAG) -> str:
    """Tag a trailing step that has none (e.g. an answer line ended by end-of-text), so a PRM scores it."""
    if text.rsplit(tag, 1)[-1].strip():
        return text.rstrip() + " " + tag
    return text


def is_finished(text: str) -> bool:
    """A path is complete once it states its answer."""
    return "The answer is" in text


def check_step_tag_agreement(policy_tag: str, prm_tag: str, where: str = "") -> None:
    if policy_tag != prm_tag:
        raise ValueError(
            f"{where}step tag mismatch: the policy separates steps with {policy_tag!r} but the PRM scores at "
            f"{prm_tag!r}; the PRM would read no step and every score would be missing. Use the same tag for both."
        )


def parse_math_shepherd_labels(input_text: str, label_text: str, tag: str = STEP_TAG, where: str = "") -> list[float]:
    """Hard labels (1.0 for `+`, 0.0 for `-`) of the tags in `input_text`, read from `label_text`."""
    pieces = input_text.split(tag)
    labels, pos = [], 0
    for piece in pieces[:-1]:
        if label_text[pos : pos + len(piece)] != piece or pos + len(piece) >= len(label_text):
            raise ValueError(f"{where}label does not match input around character {pos}: expected {piece[-30:]!r}")
        pos += len(piece)
        mark = label_text[pos]
        if mark not in "+-":
            raise ValueError(f"{where}expected '+' or '-' at a step tag, found {mark!r}")
        labels.append(1.0 if mark == "+" else 0.0)
        pos += 1
    if label_text[pos:] != pieces[-1]:
        raise ValueError(f"{where}label text differs from input after the last step tag")
    if not labels:
        raise ValueError(f"{where}input has no step tag {tag!r}")
    return labels
