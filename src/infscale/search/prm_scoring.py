"""Process reward model scoring: one probability per step tag of a solution, from our token-classification PRM
or a released causal-LM PRM (training: training/prm_training.py). Tree search scores its nodes with it; the
score rule scores sampled candidates."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from infscale.core.stepformat import STEP_TAG, check_step_tag_agreement, close_last_step, format_prompt
from infscale.search.prefix_scoring import forward_at

if TYPE_CHECKING:
    from infscale.search.shards import ShardReport


def normalise_step_tags(text: str, tag: str = STEP_TAG) -> str:
    """One space before every step tag, as the PRM saw in training (` ки`): a policy that writes `34ки` or
    `34   ки` is scored at the same tag a PRM trained on Math-Shepherd rows knows."""
    return re.sub(r"[ \t]*" + re.escape(tag), " " + tag, text)


def as_math_shepherd_text(steps: Sequence[str], tag: str = STEP_TAG) -> str:
    """Canonical steps in the Math-Shepherd format: each step followed by ` ки`, one a line. A paper-format
    solution's steps (prm_families.math_shepherd_steps) give back its text."""
    return "\n".join(f"{s} {tag}" for s in steps)


def tag_token_positions(tokenizer, text: str, tag: str = STEP_TAG) -> tuple[list[int], list[int]]:
    """(token ids of `text`, index of the token that ends each step tag), found from the text through the
    tokenizer's offset mapping, so any tokenizer works: one where `ки` is an added token, a byte-level BPE where
    ` ки` and `ки` are different tokens, a SentencePiece-style `▁ки`, or one that splits the tag in pieces (then
    the last piece, where Math-Shepherd reads it: `tokenizer.encode(" ки")[-1]`)."""
    return token_positions_at(tokenizer, text, tag_ends(text, tag))


def tag_ends(text: str, tag: str = STEP_TAG) -> list[int]:
    """The character offset just after each step tag in `text`."""
    return [m.end() for m in re.finditer(re.escape(tag), text)]


def token_positions_at(tokenizer, text: str, ends: Sequence[int]) -> tuple[list[int], list[int]]:
    """(token ids of `text`, index of the last token covering the character before each end offset in `ends`),
    from the tokenizer's offset mapping; an end no token covers (e.g. inside skipped whitespace) gets none."""
    return token_positions_many(tokenizer, [text], [ends])[0]


def token_positions_many(tokenizer, texts: Sequence[str], ends: Sequence[Sequence[int]]
                         ) -> list[tuple[list[int], list[int]]]:
    """token_positions_at of each text with its ends, the texts encoded in one tokenizer call (the same ids: a
    batch is encoded text by text)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"the PRM needs a fast tokenizer (offset mapping) to find its step tags; "
                         f"{type(tokenizer).__name__} has none")
    if not texts:
        return []
    enc = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
    return [(ids, _positions(offsets, text_ends))
            for ids, offsets, text_ends in zip(enc["input_ids"], enc["offset_mapping"], ends)]


def _positions(offsets, ends: Sequence[int]) -> list[int]:
    positions, t = [], 0
    for end in ends:  # the last token covering the tag's last character
        while t < len(offsets) and offsets[t][1] < end:
            t += 1
        last = None
        k = t
        while k < len(offsets) and offsets[k][0] < end:
            if offsets[k][1] >= end and offsets[k][1] > offsets[k][0]:
                last = k
            k += 1
        if last is not None:
            positions.append(last)
    return positions


STEPS = ("tag", "code")  # where a verifier reads a step's end: the step tag, or a logical line's end


def check_steps(steps: str) -> str:
    if steps not in STEPS:
        raise ValueError(f"verifier steps must be one of {', '.join(STEPS)}, got {steps!r}")
    return steps


def is_causal_lm_prm(path: str | Path) -> bool:
    """A released Math-Shepherd-style PRM is a causal LM that scores a step by P(+) against P(-) at its tag;
    ours is a token-classification model. The checkpoint's own config tells them apart."""
    from transformers import AutoConfig

    architectures = getattr(AutoConfig.from_pretrained(str(path)), "architectures", None) or []
    return any(a.endswith("ForCausalLM") for a in architectures)


def has_repeated_reward_head(model) -> bool:
    """The authors' release (tkitsers/Llemma-reward-model, made by their convert_checkpoint_to_hf.py) stores its
    scalar reward head repeated over every row of the output embedding: all rows equal. Such a model reads
    `sigmoid(logits.mean(-1))` at the tag (their hf_score.py); `+` against `-` would be 0.5 everywhere."""
    import torch

    head = model.get_output_embeddings()
    if head is None or head.weight.shape[0] < 2:
        return False
    w = head.weight.detach()
    first = w[:1]
    with torch.no_grad():
        return all(torch.equal(w[i : i + 4096], first.expand(min(4096, w.shape[0] - i), -1))
                   for i in range(0, w.shape[0], 4096))


def inference_dtype(device: str):
    """bf16 on a GPU (a 34B PRM saved in fp32 is 135 GB; bf16 is how it was trained), fp32 on CPU."""
    import torch

    return torch.bfloat16 if str(device).startswith("cuda") else torch.float32


def _last_token_id(tokenizer, text: str) -> int:
    return tokenizer.encode(text, add_special_tokens=False)[-1]


READINGS = ("tag_head", "plus_minus", "mean_logit")


class ProcessRewardModel:
    """Scores solutions: one probability per step tag. Reads `format_prompt(question) + solution`, with the
    tag spacing normalised (`normalise_step_tags`), after the tokenizer's leading special tokens (its BOS, where
    it adds one: `models.leading_special_ids`); tags are found from the text (offset mapping).

    Three kinds of checkpoints, told apart from the checkpoint itself (`reading`):
    * tag_head: ours, a scalar token-classification head; score = sigmoid at the tag token;
    * plus_minus: a released causal-LM PRM in the Math-Shepherd convention; score = softmax over the logits of
      `+` and `-` at the tag;
    * mean_logit: a causal LM whose output rows all repeat one reward head (the paper authors' release);
      score = sigmoid(mean of the logits) at the tag, as their hf_score.py reads it.
    Batches hold at most `batch_size` rows and `max_batch_tokens` tokens (rows x longest row, a shared prefix
    counted in each row that reads it)."""

    def __init__(self, path: str, batch_size: int = 64, threads: int | None = None, device: str | None = None,
                 max_batch_tokens: int | None = None, dtype=None, split_steps=None):
        import torch

        from infscale.core.models import leading_special_ids, load_for_inference

        causal = is_causal_lm_prm(path)
        auto_class = "AutoModelForCausalLM" if causal else "AutoModelForTokenClassification"
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.tokenizer, self.model, self.device = load_for_inference(
            path, auto_class, "right", threads, device, dtype=dtype or inference_dtype(device))
        if not causal:
            self.reading = "tag_head"
        elif has_repeated_reward_head(self.model):
            self.reading = "mean_logit"
        else:
            self.reading = "plus_minus"
            self.label_ids = [_last_token_id(self.tokenizer, " +"), _last_token_id(self.tokenizer, " -")]
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.prefix = leading_special_ids(self.tokenizer)  # the tokenizer's BOS, where it adds one
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.split_steps = split_steps  # None: the solution's own text, as today

    def read(self, logits):
        """Step probabilities (rows x positions, on CPU) from the model's logits, by `reading`."""
        import torch

        if self.reading == "plus_minus":
            return torch.softmax(logits[..., self.label_ids].float(), dim=-1)[..., 0].cpu()
        if self.reading == "mean_logit":
            return torch.sigmoid(logits.float().mean(-1)).cpu()
        return torch.sigmoid(logits.squeeze(-1).float()).cpu()

    def score(self, questions: Sequence[str], solutions: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        """Per-step scores of each (question, solution) and the number of tokens the PRM read for it.

        Every step is scored, a trailing one without a tag too (`close_last_step`). Solutions longer than the
        PRM's context are cut from the left of the question, never the steps. Prefixes the texts share (a
        problem's prompt; a tree node's siblings' path) are read once (`prefix_scoring`); the token counts are
        the paper's convention, every text read whole."""
        encoded, tag_positions = [], []
        for q, s in zip(questions, solutions):
            if self.split_steps is not None:  # another format's steps, written the Math-Shepherd way
                s = as_math_shepherd_text(self.split_steps(s))
            text = format_prompt(q) + normalise_step_tags(close_last_step(s))
            ids, positions = tag_token_positions(self.tokenizer, text)
            cut, k = max(0, len(self.prefix) + len(ids) - self.context_length), len(self.prefix)
            encoded.append(self.prefix + ids[cut:])
            tag_positions.append([p - cut + k for p in positions if p >= cut])
        scores = forward_at(self.model, encoded, tag_positions, self.tokenizer.pad_token_id, self.device, self.read,
                            self.batch_size, self.max_batch_tokens)
        return scores, [len(e) for e in encoded]


def score_records(prm: ProcessRewardModel, records: list[dict]) -> None:
    """Add `step_scores` and `prm_tokens` to every candidate that has none, in one batched pass.
    Tree-search candidates were scored while searching (same PRM): they are kept, not read twice."""
    todo = [(r["question"], c) for r in records for c in r["candidates"] if "step_scores" not in c]
    scores, tokens = prm.score([q for q, _ in todo], [c["text"] for _, c in todo])
    for (_, c), s, t in zip(todo, scores, tokens):
        c["step_scores"], c["prm_tokens"] = s, t


def score_records_in_shards(load: Callable[[], ProcessRewardModel], records: list[dict], shard_size: int,
                            shard_dir: str | Path, stamp: str) -> tuple[list[dict], ShardReport]:
    """score_records over shards of `shard_size` problems, each written when scored (shards.run_in_shards), so a
    killed score job resumes from its last finished shard, as generation does. `load()` returns the PRM and is
    called once, only if some shard is left to score. Returns the scored records (new objects) and the report."""
    from infscale.search.shards import run_in_shards

    loaded: list[ProcessRewardModel] = []

    def work(shard: list[dict], i: int) -> list[dict]:
        if not loaded:
            loaded.append(load())
        shard = copy.deepcopy(shard)
        score_records(loaded[0], shard)
        return shard

    return run_in_shards(records, shard_size, shard_dir, stamp, work)


def require_search_scores(records: list[dict], where: str = "") -> None:
    """A tree search's candidates must all carry the step scores the PRM gave while searching."""
    for i, r in enumerate(records, start=1):
        for k, c in enumerate(r["candidates"]):
            if "step_scores" not in c:
                raise ValueError(f"{where}: row {i}, candidate {k}: a tree-search candidate without step_scores "
                                 "(the search scores every candidate; was this file made by sampling?)")


def step_tag_of(model_dir: str | Path) -> str:
    """The step tag a checkpoint was trained with (recorded in its training summary; default the Math-Shepherd tag)."""
    summary = Path(model_dir) / "training_summary.json"
    return json.loads(summary.read_text()).get("step_tag", STEP_TAG) if summary.exists() else STEP_TAG


def check_pairing(policy_dir: str | Path, prm_dir: str | Path) -> None:
    """Refuse a PRM that would score at a tag the policy never writes."""
    check_step_tag_agreement(step_tag_of(policy_dir), step_tag_of(prm_dir), where=f"{policy_dir} with {prm_dir}: ")

