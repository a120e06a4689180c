"""Verifier families: released process reward models, each read by its own recipe (docs/verifiers.md).

Every family starts from one canonical list of steps per candidate (`split_steps(solution)`: each step's text,
delimiter removed, stripped; the answer step included) and has
* a formatter, `encode(question, steps) -> (token ids, positions)`: the exact text or ids its release was trained
  on, template tokens included, and the index of the token whose output scores each step;
* a reader, `read(outputs) -> probabilities`: from the model's outputs at those positions.

The families (recipes and their sources: docs/verifiers.md):
* `math_shepherd`: today's text and readings (search/prm_scoring.py, not here);
* `qwen_prm`: system, user, assistant turns, steps each ended by `<extra_0>`; P(class 1) of the 2-class head there;
* `rlhflow`: Llama-3.1 turns, user = question + step 1 then step k, assistant `+`; softmax of the `+` and `-`
  logits at the token that predicts each assistant `+`;
* `skywork`: ids of BOS + question + newline, then each step's ids and the newline's id; sigmoid of the value head
  at each step's newline;
* `token_classification` (TRL PRMTrainer): [BOS] + the question's ids, each step's ids then the separator's ids;
  softmax over the 2 labels, label 1, at each separator's last token.

`FamilyVerifier` scores like `ProcessRewardModel`: `score(questions, solutions) -> (per-step scores, tokens read)`,
the token count the whole formatted sequence (template tokens included: they feed the PRM's FLOPs). Shared prefixes
are read once (search/prefix_scoring.py), except for a model loaded with trust_remote_code, whose forward may not
take a cache. Nothing downloaded runs unless `trust_remote_code`: a head a release defines in its own code is
loaded into a small module here (`ScoreHead`, `ValueHead`) from the checkpoint's weights.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Callable, Sequence

from infscale.core.stepformat import STEP_TAG, close_last_step
from infscale.core.stepformat import split_steps as split_tagged
from infscale.search.prefix_scoring import MIN_SHARED, forward_at

FAMILIES = ("math_shepherd", "qwen_prm", "rlhflow", "skywork", "token_classification")
DEFAULT_FAMILY = "math_shepherd"

QWEN_PRM_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."  # the model card's
QWEN_PRM_SEPARATOR = "<extra_0>"
TRL_SEPARATOR = "\n"  # TRL PRMConfig.step_separator's default


def math_shepherd_steps(solution: str, tag: str = STEP_TAG) -> list[str]:
    """Today's canonical steps of a paper-format solution: the tag split (a trailing untagged piece is a step),
    each step's text without its tag, stripped."""
    steps = split_tagged(close_last_step(solution, tag), tag)
    return [s[: -len(tag)].strip() if s.endswith(tag) else s.strip() for s in steps]


class FamilyError(ValueError):
    """A checkpoint that lacks what its family's recipe needs."""


# ---- small modules holding heads that releases define in their own code ------------------------------------

def _nn():
    import torch

    return torch.nn


class _Outputs:
    def __init__(self, logits):
        self.logits = logits


@functools.cache
def _modules():
    """The torch modules of this file, defined once torch is imported (the package imports torch lazily)."""
    import torch

    class HeadOnBackbone(torch.nn.Module):
        """A transformers backbone (AutoModel: hidden states, cache, position ids) and a head of ours; forward
        returns `.logits` = head(last hidden state), as forward_at reads a model."""

        def __init__(self, backbone, head):
            super().__init__()
            self.backbone, self.head, self.config = backbone, head, backbone.config

        def forward(self, **kwargs):
            return _Outputs(self.head(self.backbone(**kwargs).last_hidden_state))

    class LogitsOf(torch.nn.Module):
        """A release's own model (trust_remote_code) whose forward may return a tuple: `.logits` is its first
        output."""

        def __init__(self, model):
            super().__init__()
            self.model, self.config = model, model.config

        def forward(self, **kwargs):
            out = self.model(**kwargs)
            return _Outputs(out.logits if hasattr(out, "logits") else out[0])

    return HeadOnBackbone, LogitsOf


def score_head(hidden_size: int, num_labels: int = 2):
    """Qwen2ForProcessRewardModel's head (Qwen2.5-Math-PRM's modeling_qwen2_rm.py): `score` =
    Sequential(Linear(h, h), ReLU, Linear(h, num_labels)), weights `score.0.*` and `score.2.*`."""
    nn = _nn()
    return nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, num_labels))


def value_head(hidden_size: int):
    """Skywork's ValueHead (skywork-o1-prm-inference model_utils/prm_model.py), in eval mode: dropout is the
    identity, then `summary` = Linear(h, 1), weights `v_head.summary.*`."""
    return _nn().Linear(hidden_size, 1)


def _weight_files(path: Path) -> list[Path]:
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index).exists():
            files = sorted(set(json.loads((path / index).read_text())["weight_map"].values()))
            return [path / f for f in files]
    for single in ("model.safetensors", "pytorch_model.bin"):
        if (path / single).exists():
            return [path / single]
    raise FamilyError(f"{path}: no model.safetensors or pytorch_model.bin (with or without an index) to read "
                      "the head's weights from")


def read_tensors(path: str | Path, names: Sequence[str]) -> dict:
    """The named tensors of a local checkpoint (safetensors or torch .bin, sharded or not); a missing name is a
    FamilyError naming the checkpoint and the tensor."""
    import torch

    path, found = Path(path), {}
    for f in _weight_files(path):
        if f.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(f), framework="pt") as st:
                found.update({n: st.get_tensor(n) for n in names if n in st.keys()})
        else:
            state = torch.load(str(f), map_location="cpu", weights_only=True)
            found.update({n: state[n] for n in names if n in state})
    missing = [n for n in names if n not in found]
    if missing:
        raise FamilyError(f"{path}: the checkpoint has no tensor {', '.join(missing)}")
    return found


def label_one_probability(logits):
    """A 2-class head's probability of class 1 (a correct step), softmax over the classes (qwen_prm,
    token_classification)."""
    import torch

    return torch.softmax(logits.float(), dim=-1)[..., 1].cpu()


# ---- the families ---------------------------------------------------------------------------------------------

class Family:
    """One recipe: `load` (tokenizer, model) from a local directory or hub id, `encode` a candidate, `read`
    outputs. Subclasses set `name` and `auto_class` (the transformers class of the model that forward_at runs)."""

    name = ""
    auto_class = "AutoModel"

    def __init__(self, path: str, device: str, dtype, trust_remote_code: bool = False, **options):
        import transformers

        self.path, self.device, self.trust_remote_code = str(path), device, bool(trust_remote_code)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(self.path, trust_remote_code=self.trust_remote_code)
        self.options = options
        self.check_tokenizer()
        self.model = self.load_model(dtype).to(device).eval()
        self.context_length = int(getattr(self.model.config, "max_position_embeddings", 4096))
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else (self.tokenizer.eos_token_id or 0)

    def where(self) -> str:
        return f"{self.path} (prm.family {self.name})"

    def check_tokenizer(self) -> None:
        """Refuse a tokenizer that lacks what `encode` needs."""

    def load_model(self, dtype):
        import transformers

        kwargs = {} if dtype is None else {"dtype": dtype}
        return getattr(transformers, self.auto_class).from_pretrained(
            self.path, trust_remote_code=self.trust_remote_code, **kwargs)

    def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
        raise NotImplementedError

    def read(self, logits):
        raise NotImplementedError

    def _chat_template(self) -> None:
        if not getattr(self.tokenizer, "chat_template", None):
            raise FamilyError(f"{self.where()}: the tokenizer has no chat template; this family reads chat turns")


def _load_backbone(family: Family, dtype, head_names: dict[str, str], head):
    """The backbone (AutoModel of the checkpoint's model type, never remote code) with `head` filled from the
    checkpoint's tensors (`head_names`: our parameter name -> the release's tensor name)."""
    import transformers

    kwargs = {} if dtype is None else {"dtype": dtype}
    config = transformers.AutoConfig.from_pretrained(family.path, trust_remote_code=False)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # the head's tensors are "unexpected" to the backbone: read below
    try:
        backbone = transformers.AutoModel.from_pretrained(family.path, config=config, trust_remote_code=False,
                                                          **kwargs)
    finally:
        transformers.logging.set_verbosity(verbosity)
    tensors = read_tensors(family.path, list(head_names.values())) if Path(family.path).is_dir() else \
        _hub_tensors(family.path, list(head_names.values()))
    state = {ours: tensors[theirs] for ours, theirs in head_names.items()}
    expected = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    for k, v in state.items():
        if tuple(v.shape) != expected[k]:
            raise FamilyError(f"{family.where()}: {head_names[k]} has shape {tuple(v.shape)}, the head needs "
                              f"{expected[k]}")
    head.load_state_dict(state)
    return _modules()[0](backbone, head.to(backbone.dtype))


def _hub_tensors(repo_id: str, names: Sequence[str]) -> dict:
    """A hub id: its files come to the local cache first (transformers already fetched the config and weights)."""
    from huggingface_hub import snapshot_download

    return read_tensors(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.bin"]), names)


class QwenPRM(Family):
    """Qwen2.5-Math-PRM-7B/72B (model card "Quick Start"; search-and-learn src/sal/models/reward_models.py
    Qwen_2_5_Math): system, user and assistant turns through the tokenizer's chat template; the assistant turn is
    the steps each followed by `<extra_0>`; score = softmax over the 2-class head at each `<extra_0>`, class 1."""

    name = "qwen_prm"

    def check_tokenizer(self) -> None:
        self._chat_template()
        ids = self.tokenizer.encode(QWEN_PRM_SEPARATOR, add_special_tokens=False)
        if len(ids) != 1:
            raise FamilyError(f"{self.where()}: the tokenizer has no {QWEN_PRM_SEPARATOR} token (Qwen2.5-Math-PRM's "
                              f"step separator); it reads it as {len(ids)} tokens")
        self.separator_id = ids[0]
        self.system_prompt = self.options.get("system_prompt") or QWEN_PRM_SYSTEM

    def load_model(self, dtype):
        if self.trust_remote_code:  # the release's own Qwen2ForProcessRewardModel (AutoModel in its auto_map)
            return _modules()[1](super().load_model(dtype))
        import transformers

        hidden = transformers.AutoConfig.from_pretrained(self.path, trust_remote_code=False).hidden_size
        names = {f"{i}.{p}": f"score.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")}
        return _load_backbone(self, dtype, names, score_head(hidden, 2))

    def encode(self, question, steps):
        answer = "".join(s.replace(QWEN_PRM_SEPARATOR, "") + QWEN_PRM_SEPARATOR for s in steps)
        messages = [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": question},
                    {"role": "assistant", "content": answer}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        ids = self.tokenizer.encode(text)  # as the model card: the template's text, the tokenizer's defaults
        positions = [i for i, t in enumerate(ids) if t == self.separator_id]
        if len(positions) != len(steps):
            raise FamilyError(f"{self.where()}: {len(steps)} steps but {len(positions)} {QWEN_PRM_SEPARATOR} tokens "
                              "after the chat template (does the question or system prompt hold one?)")
        return ids, positions

    def read(self, logits):
        return label_one_probability(logits)


class RLHFlowPRM(Family):
    """RLHFlow/Llama3.1-8B-PRM-Deepseek-Data and -Mistral-Data (RLHF-Reward-Modeling math-rm/prm_evaluate.py;
    search-and-learn RLHFFlow): Llama-3.1 chat turns, user = question + " " + step 1 then step k, each answered by
    an assistant `+`; score = softmax over the logits of `+` and `-` at the token that predicts each assistant `+`."""

    name = "rlhflow"
    auto_class = "AutoModelForCausalLM"
    SENTINEL = "\x00"  # stands for each assistant `+` while finding its character offset

    def check_tokenizer(self) -> None:
        self._chat_template()
        if not getattr(self.tokenizer, "is_fast", False):
            raise FamilyError(f"{self.where()}: needs a fast tokenizer (offset mapping) to find the assistant `+`")
        self.plus_id = self.tokenizer.encode("+", add_special_tokens=False)[-1]
        self.minus_id = self.tokenizer.encode("-", add_special_tokens=False)[-1]

    def encode(self, question, steps):
        clean = [s.replace(self.SENTINEL, "") for s in steps]
        question = question.replace(self.SENTINEL, "")
        turns = []
        for k, step in enumerate(clean):
            turns += [{"role": "user", "content": f"{question} {step}" if k == 0 else step},
                      {"role": "assistant", "content": self.SENTINEL}]
        if not turns:
            turns = [{"role": "user", "content": question}]
        pieces = self.tokenizer.apply_chat_template(turns, tokenize=False).split(self.SENTINEL)
        plus_chars, text = [], pieces[0]
        for piece in pieces[1:]:
            plus_chars.append(len(text))
            text += "+" + piece
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        positions = []
        for c in plus_chars:
            t = next((t for t, (a, b) in enumerate(offsets) if a <= c < b), None)
            if t is None or ids[t] != self.plus_id or t == 0:
                raise FamilyError(f"{self.where()}: the assistant `+` is not a token of its own after the chat "
                                  "template")
            positions.append(t - 1)  # the position whose next-token logits predict `+`
        return ids, positions

    def read(self, logits):
        import torch

        return torch.softmax(logits[..., [self.plus_id, self.minus_id]].float(), dim=-1)[..., 0].cpu()


class SkyworkPRM(Family):
    """Skywork-o1-Open-PRM-Qwen-2.5-1.5B/7B (skywork-o1-prm-inference model_utils/io_utils.py prepare_input and
    prm_model.py; search-and-learn SkyworkO1): ids of BOS + question + "\\n", then each step's ids followed by the
    id of "\\n"; score = sigmoid of the value head at each step's "\\n". The head is defined in Skywork's package,
    not in transformers: always our ValueHead from the checkpoint's `v_head.summary.*`."""

    name = "skywork"

    def check_tokenizer(self) -> None:
        if self.tokenizer.bos_token is None:
            raise FamilyError(f"{self.where()}: the tokenizer names no bos_token (Skywork's prompt starts with it)")
        self.newline_id = self.tokenizer.encode("\n")[-1]

    def load_model(self, dtype):
        import transformers

        hidden = transformers.AutoConfig.from_pretrained(self.path, trust_remote_code=False).hidden_size
        return _load_backbone(self, dtype, {"weight": "v_head.summary.weight", "bias": "v_head.summary.bias"},
                              value_head(hidden))

    def encode(self, question, steps):
        tok = self.tokenizer
        ids = list(tok.encode(tok.bos_token + question + "\n"))  # the reference's calls, the tokenizer's defaults
        positions = []
        for step in steps:
            ids += (tok.encode(step) if step else []) + [self.newline_id]
            positions.append(len(ids) - 1)
        return ids, positions

    def read(self, logits):
        import torch

        return torch.sigmoid(logits.squeeze(-1).float()).cpu()


class TokenClassificationPRM(Family):
    """A PRM trained with TRL's PRMTrainer (trl/trainer/prm_trainer.py tokenize_row): the question's ids (after
    the BOS where the tokenizer has one), then each step's ids followed by the separator's ids, concatenated as ids
    (not joined as a string); a 2-label token-classification head, label 1 = a correct step, read at the
    separator's last token: softmax over the labels, label 1."""

    name = "token_classification"
    auto_class = "AutoModelForTokenClassification"

    def check_tokenizer(self) -> None:
        self.separator = self.options.get("step_separator") or TRL_SEPARATOR
        self.separator_ids = self.tokenizer.encode(self.separator, add_special_tokens=False)
        if not self.separator_ids:
            raise FamilyError(f"{self.where()}: the step separator {self.separator!r} encodes to no token")

    def load_model(self, dtype):
        model = super().load_model(dtype)
        if int(model.config.num_labels) != 2:
            raise FamilyError(f"{self.where()}: a token-classification PRM with {model.config.num_labels} labels; "
                              "this family reads TRL's 2-label head (label 1 = correct step). A 1-label head is "
                              "our own Math-Shepherd PRM: prm.family math_shepherd")
        return model

    def encode(self, question, steps):
        tok = self.tokenizer
        ids = ([tok.bos_token_id] if tok.bos_token_id is not None else []) + tok(
            question, add_special_tokens=False)["input_ids"]
        positions = []
        for step in steps:
            ids += tok(step, add_special_tokens=False)["input_ids"] + self.separator_ids
            positions.append(len(ids) - 1)
        return ids, positions

    def read(self, logits):
        return label_one_probability(logits)


CLASSES = {c.name: c for c in (QwenPRM, RLHFlowPRM, SkyworkPRM, TokenClassificationPRM)}


class FamilyVerifier:
    """A released PRM read by its family's recipe; scores like ProcessRewardModel (module doc). `split_steps`
    gives a candidate's canonical steps (default: the paper's tag split, math_shepherd_steps)."""

    def __init__(self, path: str, family: str, batch_size: int = 64, threads: int | None = None,
                 device: str | None = None, max_batch_tokens: int | None = None, dtype=None,
                 split_steps: Callable[[str], list[str]] | None = None, trust_remote_code: bool = False,
                 **options):
        import torch

        from infscale.search.prm_scoring import inference_dtype

        if family not in CLASSES:
            raise ValueError(f"unknown prm.family {family!r}; known: {', '.join(FAMILIES)}")
        if threads:
            torch.set_num_threads(threads)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.family = CLASSES[family](path, device, dtype or inference_dtype(device), trust_remote_code, **options)
        self.device, self.split_steps = device, split_steps or math_shepherd_steps
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        # A release's own code may not take a cache: read every text whole then.
        self.min_shared = 10**9 if trust_remote_code else MIN_SHARED

    @property
    def tokenizer(self):
        return self.family.tokenizer

    def encode(self, question: str, solution: str) -> tuple[list[int], list[int]]:
        """(token ids the PRM reads, index of each step's scoring token), cut from the left to the context."""
        ids, positions = self.family.encode(question, self.split_steps(solution))
        cut = max(0, len(ids) - self.family.context_length)
        return ids[cut:], [p - cut for p in positions if p >= cut]

    def score(self, questions: Sequence[str], solutions: Sequence[str]) -> tuple[list[list[float]], list[int]]:
        """Per-step scores of each (question, solution) and the number of tokens the PRM read for it (every token
        of the formatted sequence, the template's included)."""
        encoded = [self.encode(q, s) for q, s in zip(questions, solutions)]
        scores = forward_at(self.family.model, [e[0] for e in encoded], [e[1] for e in encoded], self.family.pad_id,
                            self.device, self.family.read, self.batch_size, self.max_batch_tokens, self.min_shared)
        return scores, [len(e[0]) for e in encoded]
