"""Bookkeeping shared by the tree searches (REBASE, MCTS, beam search, DVTS): nodes, trees, batched expansion
and scoring, cost.

A node is one solution step generated after the policy's prompt (`PolicyFormat.render_prompt`) + the path text of
its parent, stopped at the format's step delimiter (the paper's: the step tag; code: the end of a logical line).
The transformers engine keeps the keys and values of every step that ended at the delimiter (its prefix cache):
expanding a node reads only the tokens after its parent's, not the prompt and path again. Every expansion is one
engine call for all requests of all problems (each prompt repeated once per child, n=1), every evaluation one PRM
call. Each tree records what its search cost: one `[context, generated]` pair per generated node (dropped ones
included) and the tokens the PRM read per scored node.

A new node is classified once, when it is added (`Tree.add`):
  * finished: within `max_solution_tokens`, its path states the answer (format stop `answer_line`, the
    paper's) or the policy ended it with end-of-text (stop `eos`); never expanded;
  * dropped, not scored: the step hit `max_step_tokens` without a delimiter ("length"), ended without a
    delimiter and without an answer ("no_tag", e.g. end-of-text; with stop `eos`, end-of-text before any text of
    the path), or the path's running total of generated
    tokens exceeds `max_solution_tokens` ("solution_tokens");
  * dropped after scoring: an unfinished node at `max_depth` ("depth"); it can never become a candidate;
  * open otherwise.

A code problem (its row holds `tests`: evaluation.code_grading) takes steps of one logical line
(core/codesteps.py): a step stops at a newline and is generated on while the line is open (brackets, a
triple-quoted string), up to `max_step_tokens` in all; a path is finished when the policy ends it with end-of-text
(dropped as "empty" when it ends before writing anything).

`allocate` splits a REBASE budget over nodes in proportion to softmax(reward / T_b).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from fractions import Fraction
from typing import Callable, Sequence

from infscale.core.codesteps import NEWLINE, ends_step
from infscale.core.policy_format import PolicyFormat
from infscale.search.engine_base import Completion, Engine, SamplingParams, derived_seed

ALLOCATION_RULES = ("ceil", "round")


@dataclass(frozen=True)
class SearchParams:
    """Generation limits shared by the tree searches (paper App. C defaults)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_step_tokens: int = 256
    max_solution_tokens: int = 1024  # a running total over the path
    max_depth: int = 25

    def __post_init__(self):
        for name in ("max_step_tokens", "max_solution_tokens", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, params: dict) -> SearchParams:
        """The known keys of a strategy's params (others are ignored), cast to their types."""
        return cls(**{f.name: type(f.default)(params[f.name]) for f in fields(cls) if params.get(f.name) is not None})

    def sampling(self, seed: int, stop: str = PolicyFormat.step_delimiter,
                 max_new_tokens: int | None = None) -> SamplingParams:
        return SamplingParams(n=1, temperature=self.temperature, top_p=self.top_p,
                              max_new_tokens=max_new_tokens or self.max_step_tokens, stop=(stop,), seed=seed)


@dataclass
class Node:
    id: int
    parent: int | None  # None: a child of the root (the prompt)
    depth: int
    text: str  # this step only
    tokens: int  # generated tokens of this step
    path_tokens: int  # generated tokens from the root to this node, inclusive
    finish_reason: str
    finished: bool = False
    dropped: bool = False
    drop_reason: str | None = None  # length | no_tag | solution_tokens | depth | empty (code)
    reward: float | None = None  # the PRM's score of this node's (last) step
    prm_tokens: int | None = None  # tokens the PRM read to score this node
    width: int = 0  # children generated from this node

    @property
    def scorable(self) -> bool:
        return not self.dropped or self.drop_reason == "depth"

    @property
    def open(self) -> bool:
        return not self.finished and not self.dropped

    def as_dict(self) -> dict:
        return {"id": self.id, "parent": self.parent, "depth": self.depth, "text": self.text, "tokens": self.tokens,
                "reward": self.reward, "width": self.width, "finished": self.finished, "dropped": self.dropped,
                "drop_reason": self.drop_reason}


@dataclass
class Tree:
    """The search tree of one problem (a row with id, question, answer, optional level); `prompt` is what the
    policy reads before the solution, `fmt` its format (start_search)."""

    row: dict
    prompt: str = ""
    fmt: PolicyFormat = field(default_factory=PolicyFormat)
    nodes: list[Node] = field(default_factory=list)
    children: dict[int | None, list[Node]] = field(default_factory=dict)  # None: the root
    prompt_tokens: int | None = None
    decode: list[list[int]] = field(default_factory=list)  # [context tokens, generated tokens] per node
    prm_tokens: list[int] = field(default_factory=list)  # tokens read per PRM item

    def __post_init__(self):
        if not self.prompt:  # a raw or template prompt needs no tokenizer (a chat prompt does: start_search)
            self.prompt = self.fmt.render_prompt(self.row["question"])

    @property
    def code(self) -> bool:
        """A code problem: steps are logical lines (module docstring)."""
        return "tests" in self.row

    def path(self, node: Node | None) -> list[Node]:
        """Nodes from the root's child down to `node` (empty for the root)."""
        out = []
        while node is not None:
            out.append(node)
            node = None if node.parent is None else self.nodes[node.parent]
        return out[::-1]

    def scored_steps(self, node: Node) -> list[Node]:
        """The path's nodes that are steps of its text (`PolicyFormat.split_steps`): all, but a last one ended by
        end-of-text with no text of its own (its reward repeats its parent's score of the same steps)."""
        path = self.path(node)
        return path[:-1] if len(path) > 1 and not path[-1].text.strip() else path

    def path_text(self, node: Node | None) -> str:
        return "".join(n.text for n in self.path(node))

    def add(self, parent: Node | None, completion: Completion, context_tokens: int, sp: SearchParams) -> Node:
        depth = 1 if parent is None else parent.depth + 1
        total = (0 if parent is None else parent.path_tokens) + completion.tokens
        node = Node(id=len(self.nodes), parent=None if parent is None else parent.id, depth=depth,
                    text=completion.text, tokens=completion.tokens, path_tokens=total,
                    finish_reason=completion.finish_reason)
        delimiter = self.fmt.step_delimiter
        path_text = self.path_text(parent) + completion.text
        # ended by end-of-text, with a step to show (a turn ended before any text is no candidate: "no_tag")
        ended = completion.finish_reason == "stop" and not completion.text.endswith(delimiter) and \
            bool(path_text.strip())
        if total > sp.max_solution_tokens:
            node.drop_reason = "solution_tokens"
        elif self.code:
            if completion.finish_reason == "stop" and not completion.text.endswith(NEWLINE):  # end-of-text
                if path_text.strip():
                    node.finished = True
                else:  # ended before writing anything: no program, no step to score
                    node.drop_reason = "empty"
            elif completion.finish_reason == "length":
                node.drop_reason = "length"
            elif depth >= sp.max_depth:
                node.drop_reason = "depth"
        elif ended if self.fmt.stop == "eos" else self.fmt.states_answer(path_text):
            node.finished = True
        elif completion.finish_reason == "length":
            node.drop_reason = "length"
        elif not completion.text.endswith(delimiter):
            node.drop_reason = "no_tag"
        elif depth >= sp.max_depth:
            node.drop_reason = "depth"
        node.dropped = node.drop_reason is not None
        self.nodes.append(node)
        self.children.setdefault(node.parent, []).append(node)
        if parent is not None:
            parent.width += 1
        self.decode.append([int(context_tokens), int(completion.tokens)])
        return node

    def record(self, grader: str, node_extra: Callable[[Node], dict] | None = None) -> dict:
        """The strategy record: the sampling record's fields, the finished paths as candidates, tree and cost."""
        candidates = []
        for node in self.nodes:
            if node.finished:
                text = self.path_text(node)
                candidates.append({"text": text, "tokens": node.path_tokens, "finish_reason": node.finish_reason,
                                   "answer": self.fmt.candidate_answer(text, node.finish_reason, grader),
                                   "step_scores": [n.reward for n in self.scored_steps(node)],
                                   "prm_tokens": node.prm_tokens})
        return {
            "id": self.row["id"], "question": self.row["question"], "reference": self.row["answer"],
            "level": self.row.get("level"), "prompt_tokens": self.prompt_tokens, "candidates": candidates,
            "tree": [{**n.as_dict(), **(node_extra(n) if node_extra else {})} for n in self.nodes],
            "cost": {"decode": [list(p) for p in self.decode], "prm_tokens": list(self.prm_tokens)},
        }


def start_search(engine: Engine, rows: Sequence[dict], fmt: PolicyFormat | None = None) -> list[Tree]:
    """One tree per problem, its prompt rendered in the policy's format (None: the paper's), and an engine with an
    empty prefix cache (`reset_prefix_cache`, where it has one): a search reads its own steps back from the cache,
    and its numbers do not depend on what the engine ran before."""
    reset = getattr(engine, "reset_prefix_cache", None)
    if callable(reset):
        reset()
    fmt = fmt or PolicyFormat()
    tokenizer = getattr(engine, "tokenizer", None)
    return [Tree(row, prompt=fmt.render_prompt(row["question"], tokenizer), fmt=fmt) for row in rows]


def expand(engine: Engine, requests: Sequence[tuple[Tree, Node | None, int]], sp: SearchParams,
           seed: int) -> list[tuple[Tree, Node]]:
    """Generate k children for every (tree, parent, k) request in ONE engine call; returns the new nodes."""
    prompts, owners = [], []
    for tree, parent, k in requests:
        prompt = tree.prompt + tree.path_text(parent)
        prompts += [prompt] * k
        owners += [(tree, parent)] * k
    if not prompts:
        return []
    code = owners[0][0].code
    generations = _generate(engine, prompts, sp.sampling(seed, NEWLINE if code else requests[0][0].fmt.step_delimiter))
    completions = [g.completions[0] for g in generations]
    if code:
        completions = finish_logical_lines(engine, prompts, [t.path_text(p) for t, p in owners], completions, sp,
                                           seed)
    new = []
    for (tree, parent), gen, completion in zip(owners, generations, completions):
        if parent is None and tree.prompt_tokens is None:
            tree.prompt_tokens = gen.prompt_tokens
        # The context is what the engine read: the prompt and the parent's path (as the engine tokenised it).
        new.append((tree, tree.add(parent, completion, gen.prompt_tokens, sp)))
    return new


def _generate(engine: Engine, prompts: list[str], params: SamplingParams):
    generations = engine.generate(prompts, params)
    if len(generations) != len(prompts) or any(len(g.completions) != 1 for g in generations):
        raise RuntimeError(f"engine returned {len(generations)} generations for {len(prompts)} prompts with n=1")
    return generations


def finish_logical_lines(engine: Engine, prompts: list[str], paths: list[str], completions: list[Completion],
                         sp: SearchParams, seed: int) -> list[Completion]:
    """Code steps: a completion stopped at a newline inside an open logical line (codesteps.ends_step on its
    path's code) is generated on from where it stopped, again to the next newline, until the line ends, the
    policy ends the text, or the step has `max_step_tokens` tokens (one engine call per round and token budget
    left). A continued step is one completion: its text and tokens joined, the last part's finish reason."""
    completions = list(completions)
    for round_ in range(1, sp.max_step_tokens + 1):
        todo = [i for i, c in enumerate(completions) if c.finish_reason == "stop" and c.text.endswith(NEWLINE)
                and c.tokens < sp.max_step_tokens and not ends_step(paths[i] + c.text)]
        if not todo:
            break
        by_budget: dict[int, list[int]] = {}
        for i in todo:
            by_budget.setdefault(sp.max_step_tokens - completions[i].tokens, []).append(i)
        for left, items in sorted(by_budget.items()):
            more = _generate(engine, [prompts[i] + completions[i].text for i in items],
                             sp.sampling(derived_seed(seed, "line", round_), NEWLINE, max_new_tokens=left))
            for i, gen in zip(items, more):
                c, extra = completions[i], gen.completions[0]
                completions[i] = Completion(text=c.text + extra.text, tokens=c.tokens + extra.tokens,
                                            finish_reason=extra.finish_reason)
    return completions


def evaluate(prm, items: Sequence[tuple[Tree, Node]]) -> None:
    """Score every scorable node in ONE PRM call: a node's reward is the PRM's score of its last step."""
    items = [(t, n) for t, n in items if n.scorable]
    if not items:
        return
    scores, tokens = prm.score([t.row["question"] for t, _ in items], [t.path_text(n) for t, n in items])
    if len(scores) != len(items) or len(tokens) != len(items):
        raise RuntimeError(f"the PRM returned {len(scores)} scores and {len(tokens)} token counts for "
                           f"{len(items)} items")
    for (tree, node), s, k in zip(items, scores, tokens):
        where = f"problem {tree.row['id']!r}, node {node.id} (depth {node.depth})"
        if not s:
            raise ValueError(f"{where}: the PRM returned no step score; does the step end with the delimiter "
                             f"{tree.fmt.step_delimiter!r}, and does the verifier read this policy's format?")
        if math.isnan(s[-1]):
            raise ValueError(f"{where}: the PRM returned a NaN reward for step {node.text[-80:]!r}")
        node.reward, node.prm_tokens = float(s[-1]), int(k)
        tree.prm_tokens.append(int(k))


def allocate(rewards: Sequence[float], budget: int, temperature: float, rule: str = "ceil") -> list[int]:
    """Split `budget` children over nodes in proportion to softmax(rewards / temperature), exactly.

    Returns non-negative integers summing to `budget`, in the order of `rewards`. Shares are computed with
    exact rationals of the (max-subtracted) softmax weights, so equal rewards get exactly equal shares.
      * "ceil" (the authors' `select_softmax`, thu-wyz/inference_scaling rebase.py): nodes in order of
        reward, highest first, each in turn takes ceil(W * w_j / S), where W is the width still unassigned and
        S the weight sum of the nodes not yet served; then W -= its width and S -= w_j. The best nodes win the
        rounding, low ones may get 0, and the last node served takes exactly what is left. Equal rewards are
        served in the authors' order too: they sort ascending (stably) and reverse, so the later node first.
      * "round" (the paper's Round, made exact): floor(budget * p_j), then one more unit to the largest
        fractional parts (ties: the higher reward, then the earlier node).
    temperature 0 gives the whole budget to the first best node; a small positive temperature gives it to the
    best node when it is unique (exactly tied best nodes split it, as softmax does).
    """
    if rule not in ALLOCATION_RULES:
        raise ValueError(f"allocation rule must be one of {ALLOCATION_RULES}, got {rule!r}")
    if isinstance(budget, bool) or int(budget) != budget or budget < 0:
        raise ValueError(f"budget must be a non-negative integer, got {budget!r}")
    if not temperature >= 0:
        raise ValueError(f"balance temperature must be >= 0, got {temperature}")
    r = [float(x) for x in rewards]
    if any(not math.isfinite(x) for x in r):
        raise ValueError(f"rewards must be finite numbers, got {r}")
    if not r:
        if budget:
            raise ValueError(f"no node to give a budget of {budget} to")
        return []
    budget = int(budget)
    order = sorted(range(len(r)), key=lambda j: r[j])[::-1]  # highest first; equal rewards: later node first
    if temperature == 0:
        weights = [Fraction(int(j == order[0])) for j in range(len(r))]
    else:
        best = r[order[0]]
        weights = [Fraction(math.exp((x - best) / temperature)) for x in r]  # the best has weight 1
    total = sum(weights)
    if rule == "ceil":
        widths, left = [0] * len(r), budget
        for j in order:
            widths[j] = math.ceil(left * weights[j] / total) if total else 0
            left -= widths[j]
            total -= weights[j]
        return widths
    shares = [budget * w / total for w in weights]
    widths = [math.floor(s) for s in shares]
    rank = sorted(range(len(r)), key=lambda j: (-(shares[j] - widths[j]), -r[j], j))
    for j in rank[: budget - sum(widths)]:
        widths[j] += 1
    return widths
