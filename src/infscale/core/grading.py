"""Answer grading: extract a final answer from a solution and judge it against a reference.

Two grader kinds exist:

* ``numeric`` (toy, GSM8K): answers are numbers; equality is exact on a canonical
  string or within 1e-6 relative tolerance as rationals.
* ``latex`` (MATH, MATH500): answers are LaTeX expressions; equality is exact on a
  cheaply normalised string, else symbolic equivalence via ``math_verify``.
* ``code`` (the toy code task, MBPP): a candidate's answer is its program; it is graded by running it
  (infscale.evaluation.code_grading), never by comparing strings: `is_correct` refuses it.

Every public function is total on strings: grading never raises on model output.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction

from infscale.core.stepformat import STEP_TAG

__all__ = [
    "GRADERS",
    "grader_kind",
    "extract_answer",
    "candidate_answer",
    "boxed_candidate_answer",
    "has_boxed",
    "reference_answer",
    "normalize_answer",
    "is_correct",
    "answers_equivalent",
]

GRADERS = {"toy": "numeric", "gsm8k": "numeric", "math500": "latex", "math": "latex", "toy_code": "code",
           "mbpp": "code"}
_KINDS = ("numeric", "latex", "code")

# Symbolic checks are skipped for absurdly long strings (they are never real answers
# and can make sympy crawl).
_MAX_SYMBOLIC_CHARS = 500
# math_verify's timeouts use signal.alarm, which only works on the main thread.
_MAIN_THREAD_TIMEOUT_S = 5


def grader_kind(grader: str) -> str:
    """Return "numeric" or "latex" for a grader name (or a grader kind itself)."""
    if grader in _KINDS:
        return grader
    try:
        return GRADERS[grader]
    except (KeyError, TypeError):
        known = ", ".join(sorted(GRADERS) + list(_KINDS))
        raise ValueError(f"unknown grader {grader!r}; known names: {known}") from None


# --------------------------------------------------------------------------- extraction

_ANSWER_IS = re.compile(r"The answer is:?[ \t]*([^\n]*)", re.IGNORECASE)
_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_BOX_CMD = re.compile(r"\\(?:boxed|fbox)")
_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")  # GSM8K calculator annotations, e.g. <<2*3=6>>


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """Content of the balanced ``{...}`` group opening at ``text[start]``, and its end."""
    if start >= len(text) or text[start] != "{":
        return None
    depth, i = 0, start
    while i < len(text):
        ch = text[i]
        if ch == "\\":  # skip the escaped character (\{ and \} do not count)
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
        i += 1
    return None


def _last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}`` (or ``\\boxed x``)."""
    for m in reversed(list(_BOX_CMD.finditer(text))):
        pos = m.end()
        if pos < len(text) and text[pos].isalpha():
            continue  # a longer command such as \boxedfoo
        j = pos
        while j < len(text) and text[j] in " \t":
            j += 1
        group = _braced(text, j)
        if group is not None:
            return group[0].strip()
        if j > pos:  # "\boxed 5$" form: the token up to whitespace or "$"
            token = re.match(r"[^\s$]+", text[j:])
            if token:
                return token.group(0)
    return None


def _clean_tail(answer: str) -> str:
    """Strip a trailing step tag, periods, whitespace and dollar signs."""
    prev = None
    while prev != answer:
        prev = answer
        answer = answer.strip()
        if answer.endswith(STEP_TAG):
            answer = answer[: -len(STEP_TAG)]
        answer = answer.strip().strip("$").rstrip(".")
    return answer


def _marker_answer(match: re.Match) -> str:
    """The answer after a "The answer is" / "####" marker: tail cleaned, a boxed expression unwrapped."""
    answer = _clean_tail(match.group(1))
    if "\\boxed" in answer or "\\fbox" in answer:
        answer = _last_boxed(answer) or answer
    return answer


def extract_answer(text: str, grader: str, last_number_fallback: bool = False) -> str | None:
    """Final answer of a solution, or None when none can be found.

    Order: last "The answer is: X" (Math-Shepherd step format), else "#### X" (GSM8K),
    else the last boxed expression, else, only with `last_number_fallback` and on numeric
    graders, the last number of the text. The pipeline never uses the fallback: a policy
    candidate has an answer only when it states one (`candidate_answer`).
    """
    kind = grader_kind(grader)
    if not isinstance(text, str):
        return None
    if kind == "numeric":
        text = _CALCULATOR.sub("", text)
    # Explicit final-answer markers. The spec order is "The answer is" before "####",
    # but when a text holds both (GSM8K references sometimes say "The answer is
    # therefore 3." before their "#### 3" line) the marker written last wins.
    markers = [m for p in (_ANSWER_IS, _HASHES) for m in p.finditer(text)]
    for m in sorted(markers, key=lambda m: m.start(), reverse=True):
        answer = _marker_answer(m)
        if answer:
            return answer
    boxed = _last_boxed(text)
    if boxed:
        return boxed
    if last_number_fallback and kind == "numeric":
        numbers = _NUMBER.findall(text)
        if numbers:
            return numbers[-1]
    return None


def candidate_answer(text: str, finish_reason: str | None, grader: str) -> str | None:
    """The answer a policy candidate states in the step format, or None: the candidate is invalid.

    Valid means the text states "The answer is[:] X" with a non-empty X (the authors' evaluator reads
    "The answer is: X ки"; "####" lines, bare boxed expressions and stray numbers do not count), and the
    answer line was not cut by the token limit: a candidate stopped by `length` whose last answer line has no
    step tag after it may hold a truncated answer ("The answer is: 4" of 45). An invalid candidate never
    votes and never wins best-of-n (aggregation skips None).
    """
    if not isinstance(text, str):
        return None
    if grader_kind(grader) == "code":  # its program; grading runs it and puts its behaviour here (code_grading)
        from infscale.core.codesteps import extract_program

        return extract_program(text)
    if grader_kind(grader) == "numeric":
        text = _CALCULATOR.sub("", text)
    matches = list(_ANSWER_IS.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    if finish_reason == "length" and STEP_TAG not in last.group(1) and last.end() >= len(text.rstrip()):
        return None
    return _marker_answer(last) or None


def has_boxed(text: str) -> bool:
    """Whether a text holds a complete boxed expression (an instruct model's answer)."""
    return isinstance(text, str) and _last_boxed(text) is not None


def boxed_candidate_answer(text: str, grader: str) -> str | None:
    """The answer an instruct policy's candidate states, `\\boxed{X}` (the last complete one), or None: the
    candidate is invalid. A box cut by the token limit is not complete, so it is never read."""
    if not isinstance(text, str):
        return None
    if grader_kind(grader) == "numeric":
        text = _CALCULATOR.sub("", text)
    boxed = _last_boxed(text)
    return _clean_tail(boxed) or None if boxed is not None else None


def reference_answer(row: dict, grader: str) -> str:
    """Reference (gold) answer of a data row.

    GSM8K rows keep the full reasoning in ``answer`` and end with ``#### N``; other rows
    carry a short ``answer`` field (MATH rows without one fall back to the boxed answer
    of ``solution``).
    """
    kind = grader_kind(grader)
    try:
        answer = row["answer"]
    except KeyError:
        if kind == "latex" and isinstance(row.get("solution"), str):
            boxed = _last_boxed(row["solution"])
            if boxed is not None:
                return boxed
        raise ValueError(f"{grader} row has no 'answer' field (keys: {sorted(row)})") from None
    answer = str(answer)
    if grader == "gsm8k" or (kind == "numeric" and "####" in answer):
        if "####" not in answer:
            raise ValueError("GSM8K row's 'answer' field has no '#### N' final line")
        answer = answer.rsplit("####", 1)[1]
    return answer.strip()


# --------------------------------------------------------------------------- normalisation

_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_PLAIN_FRACTION = re.compile(r"[+-]?\d+/\d+")
# A number written in another base: 52_9, 4210_{5}, 1A_{16} (at least one digit before "_").
_BASE_NUMBER = re.compile(r"((?=[0-9A-Z]*\d)[0-9A-Z]+)_\{?(\d+)\}?")
_SIMPLE_FRAC = re.compile(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", re.IGNORECASE)


def _canonical_decimal(s: str) -> str:
    """'+5.50' -> '5.5', '007' -> '7', '-0.0' -> '0', '.5' -> '0.5' (s matches _PLAIN_NUMBER)."""
    sign = "-" if s.startswith("-") else ""
    s = s.lstrip("+-")
    whole, _, frac = s.partition(".")
    whole = whole.lstrip("0") or "0"
    frac = frac.rstrip("0")
    body = f"{whole}.{frac}" if frac else whole
    return body if body == "0" else sign + body


def _normalize_numeric(answer: str) -> str:
    s = answer.replace("\\$", "").replace("$", "")
    s = re.sub(r"\s+", "", s)
    s = _THOUSANDS_COMMA.sub("", s)
    s = _SIMPLE_FRAC.sub(r"\1/\2", s)
    s = re.sub(r"(?:\\?%|\.)+$", "", s)  # trailing periods and percent signs
    if _PLAIN_NUMBER.fullmatch(s):
        return _canonical_decimal(s)
    if _PLAIN_FRACTION.fullmatch(s):
        return s.lstrip("+")
    return s.lower()


def _unwrap_command(s: str, command: str) -> str:
    """Replace every ``\\command{X}`` by ``X`` (balanced braces)."""
    pattern = re.compile(r"\\" + command + r"\s*(?=\{)")
    out, pos = [], 0
    for m in pattern.finditer(s):
        if m.start() < pos:
            continue
        group = _braced(s, m.end())
        if group is None:
            continue
        out.append(s[pos : m.start()])
        out.append(group[0])
        pos = group[1]
    out.append(s[pos:])
    return "".join(out)


def _normalize_latex(answer: str) -> str:
    s = answer.strip().strip("$")
    for cmd in ("text", "textbf", "mathrm", "mbox"):
        s = _unwrap_command(s, cmd)
    s = re.sub(r"\\(?:left|right)(?![A-Za-z])", "", s)
    s = re.sub(r"\\[!,;:]", "", s)
    s = re.sub(r"\^\s*\{?\s*\\circ\s*\}?", "", s)
    s = re.sub(r"\\[dt]frac(?![A-Za-z])", r"\\frac", s)
    s = s.replace("\\$", "")
    # Drop whitespace, but keep one space where it separates a command from a letter
    # ("\pi r" must not become "\pir").
    s = re.sub(
        r"(\\[A-Za-z]+)\s+(?=[A-Za-z])|\s+",
        lambda m: m.group(1) + " " if m.group(1) else "",
        s,
    )
    s = s.rstrip(".").strip("$")
    base = _BASE_NUMBER.fullmatch(s)
    return f"{base.group(1)}_{base.group(2)}" if base else s


def normalize_answer(answer: str | None, grader: str) -> str | None:
    """Cheap canonical string of an answer, for grouping equal answers (majority vote)."""
    kind = grader_kind(grader)
    if answer is None:
        return None
    if kind == "code":  # a behaviour key (code_grading) is canonical already
        return str(answer)
    normalize = _normalize_numeric if kind == "numeric" else _normalize_latex
    # Iterate to a fixed point so that normalisation is idempotent even on odd input
    # (e.g. "a.$." -> "a.$" -> "a"); real answers settle after one pass.
    s = str(answer)
    for _ in range(8):
        nxt = normalize(s)
        if nxt == s:
            break
        s = nxt
    return s


# --------------------------------------------------------------------------- comparison


def _as_fraction(s: str) -> Fraction | None:
    """Exact rational value of a canonical numeric string (no exponents: they can be huge)."""
    if _PLAIN_NUMBER.fullmatch(s) or _PLAIN_FRACTION.fullmatch(s):
        try:
            return Fraction(s)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _numeric_equal(pred: str, ref: str) -> bool:
    a, b = _as_fraction(pred), _as_fraction(ref)
    if a is None or b is None:
        return False
    if a.denominator == 1 and b.denominator == 1:
        return a == b  # integers: no tolerance (1450001 is not 1,450,000)
    return abs(a - b) <= Fraction(1, 10**6) * max(abs(a), abs(b))


def _symbolic_equal(pred: str, ref: str) -> bool:
    """Symbolic equivalence via math_verify; any failure counts as "not equal"."""
    if len(pred) > _MAX_SYMBOLIC_CHARS or len(ref) > _MAX_SYMBOLIC_CHARS:
        return False
    try:
        from math_verify import parse, verify

        # signal-based timeouts only work on the main thread; elsewhere run without one.
        on_main = threading.current_thread() is threading.main_thread()
        timeout = _MAIN_THREAD_TIMEOUT_S if on_main else None
        gold = parse(f"$\\boxed{{{ref}}}$", parsing_timeout=timeout)
        target = parse(f"$\\boxed{{{pred}}}$", parsing_timeout=timeout)
        if not gold or not target:
            return False
        return bool(verify(gold, target, timeout_seconds=timeout))
    except BaseException as err:  # noqa: BLE001 - grading must never raise
        if isinstance(err, KeyboardInterrupt):
            raise
        return False


def is_correct(prediction: str | None, reference: str, grader: str) -> bool:
    """Whether a predicted answer matches the reference answer. Never raises on strings."""
    kind = grader_kind(grader)
    if kind == "code":
        raise ValueError(f"grader {grader!r}: code is graded by running it (infscale.evaluation.code_grading), "
                         "not by comparing answers")
    if prediction is None or reference is None:
        return False
    try:
        pred = normalize_answer(prediction, kind)
        ref = normalize_answer(reference, kind)
        if pred == ref:
            return True
        if kind == "numeric":
            return _numeric_equal(pred, ref)
        if not pred or not ref:
            return False
        if _as_fraction(pred) is not None and _as_fraction(ref) is not None:
            # Plain numbers: exact comparison (math_verify rounds to 6 decimals).
            return _numeric_equal(pred, ref)
        if _BASE_NUMBER.fullmatch(pred) or _BASE_NUMBER.fullmatch(ref):
            # Numbers in another base (52_9): math_verify ignores the subscript.
            return False
        return _symbolic_equal(str(prediction), str(reference))
    except Exception:  # noqa: BLE001 - grading must never raise
        return False


def answers_equivalent(a: str | None, b: str | None, grader: str) -> bool:
    """Symmetric-use helper for voting: equivalent answers; None on either side -> False."""
    if a is None or b is None:
        return False
    return is_correct(a, b, grader)
