"""Verifier families (search/prm_families.py, docs/verifiers.md): each reads a tiny random checkpoint saved in
its release's layout (core/tiny_checkpoints.py: the real special tokens, chat templates and weight names), and
its scores agree with an independent computation of its recipe written here: the text or ids built by hand, the
raw model run, the positions picked and the softmax or sigmoid taken by hand."""
import pytest
import torch

from infscale.core.tiny_checkpoints import build_tiny_prm
from infscale.search.prm_families import FamilyError, FamilyVerifier, math_shepherd_steps

QUESTION = "Janet has 3 apples and buys 4 more. How many apples does she have?"
PAPER = ["Step 1: 3 + 4 = 7 ки\nThe answer is: 7 ки", "Step 1: 3 + 4 = 12 ки\nStep 2: So 12 ки\nThe answer is: 12"]
INSTRUCT = ["She has 3 + 4 = 7 apples.\n\nTherefore the final answer is $\\boxed{7}$.",
            "She has 3 + 4 = 8 apples.\n\nSo 8.\n\nTherefore the final answer is $\\boxed{8}$."]
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."


def instruct_steps(text):
    return [s.strip() for s in text.split("\n\n")]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("prm_families")
    return {f: build_tiny_prm(f, root / f) for f in ("qwen_prm", "rlhflow", "skywork", "token_classification")}


def tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_canonical_steps_of_the_paper_format():
    assert math_shepherd_steps(PAPER[0]) == ["Step 1: 3 + 4 = 7", "The answer is: 7"]
    assert math_shepherd_steps(PAPER[1]) == ["Step 1: 3 + 4 = 12", "Step 2: So 12", "The answer is: 12"]


# ---- qwen_prm -----------------------------------------------------------------------------------------------

def qwen_prm_by_hand(path, question, steps):
    """The model card's recipe written out: ChatML turns as text, each step then <extra_0>; the Qwen2 backbone,
    then score.0 - ReLU - score.2 from the checkpoint's tensors; softmax, class 1, at each <extra_0>."""
    from transformers import AutoTokenizer, Qwen2Model

    tok = AutoTokenizer.from_pretrained(path)
    text = (f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n"
            f"<|im_start|>assistant\n" + "".join(s + "<extra_0>" for s in steps) + "<|im_end|>\n")
    ids = tok(text, add_special_tokens=False)["input_ids"]
    sep = tok.convert_tokens_to_ids("<extra_0>")
    with torch.no_grad():
        hidden = Qwen2Model.from_pretrained(path).eval()(input_ids=torch.tensor([ids])).last_hidden_state[0]
    w = tensors(path)
    logits = torch.relu(hidden @ w["score.0.weight"].T + w["score.0.bias"]) @ w["score.2.weight"].T + w["score.2.bias"]
    probs = torch.softmax(logits, dim=-1)[:, 1]
    return [float(probs[i]) for i, t in enumerate(ids) if t == sep], len(ids)


@pytest.mark.parametrize("family", ["qwen_prm", "rlhflow", "skywork"])
@pytest.mark.parametrize("solutions,split", [(PAPER, None), (INSTRUCT, instruct_steps)])
def test_each_family_agrees_with_its_reference_recipe(checkpoints, family, solutions, split):
    """qwen_prm: the model card's; rlhflow and skywork: their repositories' (each *_by_hand below)."""
    by_hand = {"qwen_prm": qwen_prm_by_hand, "rlhflow": rlhflow_by_hand, "skywork": skywork_by_hand}[family]
    path = checkpoints[family]
    prm = FamilyVerifier(str(path), family, device="cpu", split_steps=split)
    scores, tokens = prm.score([QUESTION] * len(solutions), solutions)
    for solution, got, n in zip(solutions, scores, tokens):
        steps = (split or math_shepherd_steps)(solution)
        want, n_want = by_hand(path, QUESTION, steps)
        assert len(got) == len(steps) == len(want)
        assert got == pytest.approx(want, abs=1e-5)
        assert n == n_want  # every token read, the template's included


def test_qwen_prm_shares_prefixes_and_counts_template_tokens(checkpoints):
    """Siblings of a tree node share the prompt and a path (read once by prefix_scoring): the same scores as each
    read alone; the token count is the templated sequence's, well above the question's and steps' own."""
    path = checkpoints["qwen_prm"]
    prm = FamilyVerifier(str(path), "qwen_prm", device="cpu", split_steps=instruct_steps)
    path_text = "She has 3 apples and buys 4 more apples, so she has 3 + 4 apples."
    siblings = [f"{path_text}\n\n{tail}" for tail in ("That is 7.", "That is 8.", "That is 3 + 4 = 7.")]
    from infscale.search.prefix_scoring import plan_groups

    groups = plan_groups([prm.encode(QUESTION, t)[0] for t in siblings])
    assert len(groups) == 1 and groups[0].shared > 60  # the template, question and path: read once
    shared, _ = prm.score([QUESTION] * 3, siblings)
    for text, got in zip(siblings, shared):
        assert got == pytest.approx(qwen_prm_by_hand(path, QUESTION, instruct_steps(text))[0], abs=1e-5)
    _, (n,) = prm.score([QUESTION], [siblings[0]])
    own = len(prm.tokenizer(QUESTION + "".join(instruct_steps(siblings[0])), add_special_tokens=False)["input_ids"])
    template = len(prm.tokenizer(f"<|im_start|>system\n{QWEN_SYSTEM}<|im_end|>\n<|im_start|>user\n<|im_end|>\n"
                                 "<|im_start|>assistant\n<|im_end|>\n", add_special_tokens=False)["input_ids"])
    assert n >= own + template + 2  # + one <extra_0> a step


def test_qwen_prm_refuses_a_tokenizer_without_extra_0(checkpoints, tmp_path):
    import shutil

    from infscale.core.tiny_checkpoints import mistral_tokenizer

    bad = tmp_path / "no_extra_0"
    shutil.copytree(checkpoints["qwen_prm"], bad)
    for f in bad.glob("tokenizer*"):
        f.unlink()
    mistral_tokenizer().save_pretrained(bad)
    with pytest.raises(FamilyError, match="<extra_0>"):
        FamilyVerifier(str(bad), "qwen_prm", device="cpu")


def test_qwen_prm_refuses_a_checkpoint_without_its_head(tmp_path):
    from transformers import Qwen2Model

    from infscale.core.tiny_checkpoints import TINY, qwen_tokenizer

    tok = qwen_tokenizer()
    from transformers import Qwen2Config

    Qwen2Model(Qwen2Config(vocab_size=len(tok), **TINY)).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    with pytest.raises(FamilyError, match="score.0.weight"):
        FamilyVerifier(str(tmp_path), "qwen_prm", device="cpu")


def test_qwen_prm_runs_no_downloaded_code_unless_trusted(checkpoints, tmp_path):
    """The release's auto_map names modeling_qwen2_rm.py; without trust_remote_code it is never imported, by the
    verifier or by the FLOPs count's model shape."""
    import shutil
    import sys

    path = tmp_path / "with_remote_code"
    shutil.copytree(checkpoints["qwen_prm"], path)
    for name in ("modeling_qwen2_rm.py", "configuration_qwen2_rm.py"):
        (path / name).write_text("raise RuntimeError('downloaded code ran')\n")
    from infscale.evaluation.evaluation import model_shape

    before = set(sys.modules)
    prm = FamilyVerifier(str(path), "qwen_prm", device="cpu")
    assert prm.score([QUESTION], [PAPER[0]])[0][0]
    shape = model_shape(str(path))  # the PRM's FLOPs: its backbone's shape, read without the release's code
    assert (shape.n_layer, shape.d_attn) == (2, 32)
    assert not [m for m in set(sys.modules) - before if "qwen2_rm" in m]


# ---- rlhflow -------------------------------------------------------------------------------------------------

LLAMA31_SYSTEM = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
                  "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|>")


def rlhflow_by_hand(path, question, steps):
    """RLHFlow's recipe written out: Llama-3.1 turns as text (user: question + step 1, then step k; assistant: +);
    the causal LM's logits at the token before each assistant `+` (the text up to that `+` tokenised alone ends
    there), softmax over `+` and `-`, the `+` share."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(path)
    text, before_plus = LLAMA31_SYSTEM, []
    for k, step in enumerate(steps):
        user = f"{question} {step}" if k == 0 else step
        text += f"<|start_header_id|>user<|end_header_id|>\n\n{user.strip()}<|eot_id|>"
        text += "<|start_header_id|>assistant<|end_header_id|>\n\n"
        before_plus.append(len(tok(text, add_special_tokens=False)["input_ids"]) - 1)
        text += "+<|eot_id|>"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    assert all(ids[p + 1] == plus for p in before_plus)
    assert before_plus[-1] == len(ids) - 3  # the reference's "-3 position" of the last step
    with torch.no_grad():
        logits = LlamaForCausalLM.from_pretrained(path).eval()(input_ids=torch.tensor([ids])).logits[0]
    probs = torch.softmax(logits[:, [plus, minus]], dim=-1)[:, 0]
    return [float(probs[p]) for p in before_plus], len(ids)


def test_rlhflow_refuses_a_tokenizer_without_a_chat_template(checkpoints, tmp_path):
    import shutil

    from transformers import AutoTokenizer

    bad = tmp_path / "no_template"
    shutil.copytree(checkpoints["rlhflow"], bad)
    tok = AutoTokenizer.from_pretrained(bad)
    tok.chat_template = None
    for f in bad.glob("*.jinja"):
        f.unlink()
    tok.save_pretrained(bad)
    with pytest.raises(FamilyError, match="chat template"):
        FamilyVerifier(str(bad), "rlhflow", device="cpu")


# ---- skywork ------------------------------------------------------------------------------------------------

def skywork_by_hand(path, question, steps):
    """Skywork's recipe written out: ids of BOS + question + newline, then each step's ids and the newline id; the
    causal LM's last hidden state (as their PRM_MODEL reads it), v_head.summary, sigmoid at each step's newline."""
    from transformers import AutoTokenizer, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(path)
    newline = tok.convert_tokens_to_ids("\u010a")  # byte-level "\n"
    ids = tok("<|endoftext|>" + question + "\n", add_special_tokens=False)["input_ids"]
    flags = []
    for step in steps:
        ids += tok(step, add_special_tokens=False)["input_ids"] + [newline]
        flags.append(len(ids) - 1)
    with torch.no_grad():
        out = Qwen2ForCausalLM.from_pretrained(path).eval()(input_ids=torch.tensor([ids]), output_hidden_states=True)
    w = tensors(path)
    value = out.hidden_states[-1][0] @ w["v_head.summary.weight"].T + w["v_head.summary.bias"]
    return [float(torch.sigmoid(value[f, 0])) for f in flags], len(ids)


def test_skywork_refuses_a_checkpoint_without_its_value_head_or_bos(checkpoints, tmp_path):
    import shutil

    from safetensors.torch import save_file

    no_head = tmp_path / "no_head"
    shutil.copytree(checkpoints["skywork"], no_head)
    save_file({k: v for k, v in tensors(no_head).items() if not k.startswith("v_head.")},
              str(no_head / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(FamilyError, match="v_head.summary.weight"):
        FamilyVerifier(str(no_head), "skywork", device="cpu")
    with pytest.raises(FamilyError, match="bos_token"):
        FamilyVerifier(str(checkpoints["qwen_prm"]), "skywork", device="cpu")  # Qwen's tokenizer names none


# ---- token_classification -----------------------------------------------------------------------------------

def token_classification_by_hand(path, question, steps, separator="\n"):
    """TRL PRMTrainer's rows written out: BOS, the question's ids, each step's ids then the separator's ids;
    the token-classification logits, softmax, label 1, at each separator's last token."""
    from transformers import AutoTokenizer, MistralForTokenClassification

    tok = AutoTokenizer.from_pretrained(path)
    sep = tok(separator, add_special_tokens=False)["input_ids"]
    ids = [tok.convert_tokens_to_ids("<s>")] + tok(question, add_special_tokens=False)["input_ids"]
    ends = []
    for step in steps:
        ids += tok(step, add_special_tokens=False)["input_ids"] + sep
        ends.append(len(ids) - 1)
    with torch.no_grad():
        logits = MistralForTokenClassification.from_pretrained(path).eval()(input_ids=torch.tensor([ids])).logits[0]
    return [float(torch.softmax(logits[e], dim=-1)[1]) for e in ends], len(ids)


@pytest.mark.parametrize("separator", [None, " ки\n\n", ". "])
def test_token_classification_agrees_with_trl_rows(checkpoints, separator):
    """TRL concatenates ids: with separator ". " after steps ending in ".", the text joined as one string
    tokenises differently (checked here), and the scores follow the ids, not the string."""
    path = checkpoints["token_classification"]
    options = {} if separator is None else {"step_separator": separator}
    prm = FamilyVerifier(str(path), "token_classification", device="cpu", split_steps=instruct_steps, **options)
    if separator == ". ":
        steps = instruct_steps(INSTRUCT[1])
        joined = prm.tokenizer("".join(s + separator for s in steps), add_special_tokens=False)["input_ids"]
        assert prm.encode(QUESTION, INSTRUCT[1])[0][-len(joined):] != joined
    scores, tokens = prm.score([QUESTION] * len(INSTRUCT), INSTRUCT)
    for solution, got, n in zip(INSTRUCT, scores, tokens):
        want, n_want = token_classification_by_hand(path, QUESTION, instruct_steps(solution), separator or "\n")
        assert got == pytest.approx(want, abs=1e-5) and len(got) == len(want)
        assert n == n_want


def test_token_classification_refuses_a_one_label_head(tmp_path):
    from infscale.core.tiny_checkpoints import build_token_classification_prm

    path = build_token_classification_prm(tmp_path / "one_label", num_labels=1)
    with pytest.raises(FamilyError, match="1 labels.*math_shepherd"):
        FamilyVerifier(str(path), "token_classification", device="cpu")


@pytest.mark.parametrize("family", ["qwen_prm", "rlhflow", "skywork", "token_classification"])
def test_a_candidate_without_steps_gets_no_score_but_counts_its_tokens(checkpoints, family):
    prm = FamilyVerifier(str(checkpoints[family]), family, device="cpu",
                         split_steps=lambda text: [s for s in instruct_steps(text) if s])
    scores, (n,) = prm.score([QUESTION], [""])
    assert scores == [[]] and n > len(prm.tokenizer(QUESTION, add_special_tokens=False)["input_ids"])


# ---- configuration ------------------------------------------------------------------------------------------

@pytest.fixture
def ci_config():
    import yaml

    from infscale.core.validation import SCHEMA_PATH

    root = SCHEMA_PATH.parents[3]
    return yaml.safe_load((root / "config" / "ci.yaml").read_text())


def test_family_keys_validate_and_reach_the_jobs(ci_config):
    import yaml

    from infscale.core.config import verifier_params, verifiers
    from infscale.core.validation import SCHEMA_PATH, validate_config
    from infscale.search.prm_families import FAMILIES

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    assert tuple(schema["definitions"]["prm"]["properties"]["family"]["enum"]) == FAMILIES
    ci_config["prm_ablations"]["qwen"] = {"source": "checkpoint", "checkpoint": "Qwen/Qwen2.5-Math-PRM-7B",
                                          "family": "qwen_prm", "system_prompt": "Think."}
    c = validate_config(ci_config)
    assert verifier_params(verifiers(c)["prm-ci"]) == {"kind": "prm"}  # the default adds nothing: jobs keep theirs
    assert verifier_params(verifiers(c)["qwen"]) == {"kind": "prm", "family": "qwen_prm",
                                                     "trust_remote_code": False, "system_prompt": "Think."}


@pytest.mark.parametrize("block, message", [
    ({"family": "qwen_prm"}, r"prm.family: family qwen_prm reads a released PRM \(source checkpoint\); prm.source "
                             "is policy_likelihood"),
    ({"family": "skywork", "source": "checkpoint", "checkpoint": "x/y", "system_prompt": "Hi"},
     r"prm.system_prompt: only for family qwen_prm"),
    ({"family": "qwen_prm", "source": "checkpoint", "checkpoint": "x/y", "step_separator": "\n"},
     r"prm.step_separator: only for family token_classification"),
    ({"family": "llemma"}, r"prm.family: 'llemma' is not one of"),
])
def test_bad_family_keys_name_the_key(ci_config, block, message):
    from infscale.core.config import ConfigError
    from infscale.core.validation import validate_config

    ci_config["prm"].update(block)
    with pytest.raises(ConfigError, match=message):
        validate_config(ci_config)


def test_load_verifier_dispatches_on_the_family(checkpoints):
    from infscale.search.verifiers import load_verifier

    prm = load_verifier(str(checkpoints["qwen_prm"]), {"kind": "prm", "family": "qwen_prm",
                                                       "trust_remote_code": False, "system_prompt": "Think."},
                        device="cpu", split_steps=instruct_steps)
    assert isinstance(prm, FamilyVerifier) and prm.family.system_prompt == "Think."
    assert len(prm.score([QUESTION], [INSTRUCT[1]])[0][0]) == 3


def test_math_shepherd_family_reads_other_formats_the_math_shepherd_way(tiny_policy_dir):
    """math_shepherd keeps today's text for the paper's format (its steps written back give the same text, so the
    same scores), and writes another format's steps one a line, each ended by ` ки`."""
    from infscale.search.prm_scoring import ProcessRewardModel, as_math_shepherd_text

    assert as_math_shepherd_text(math_shepherd_steps(PAPER[0])) == PAPER[0]
    assert as_math_shepherd_text(instruct_steps(INSTRUCT[0])) == (
        "She has 3 + 4 = 7 apples. ки\nTherefore the final answer is $\\boxed{7}$. ки")
    today = ProcessRewardModel(str(tiny_policy_dir), device="cpu")
    via_steps = ProcessRewardModel(str(tiny_policy_dir), device="cpu", split_steps=math_shepherd_steps)
    assert via_steps.score([QUESTION] * 2, PAPER) == today.score([QUESTION] * 2, PAPER)
    instruct = ProcessRewardModel(str(tiny_policy_dir), device="cpu", split_steps=instruct_steps)
    assert instruct.score([QUESTION], [INSTRUCT[1]]) == today.score(
        [QUESTION], [as_math_shepherd_text(instruct_steps(INSTRUCT[1]))])


REMOTE_CONFIG = """from transformers import Qwen2Config


class Qwen2RMConfig(Qwen2Config):
    model_type = "qwen2"
"""
REMOTE_MODEL = """import torch
from transformers import Qwen2Model, Qwen2PreTrainedModel
from transformers.modeling_outputs import TokenClassifierOutput

from .configuration_qwen2_rm import Qwen2RMConfig


class Qwen2ForProcessRewardModel(Qwen2PreTrainedModel):
    config_class = Qwen2RMConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = Qwen2Model(config)
        self.score = torch.nn.Sequential(torch.nn.Linear(config.hidden_size, config.hidden_size), torch.nn.ReLU(),
                                         torch.nn.Linear(config.hidden_size, 2))
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return TokenClassifierOutput(logits=self.score(hidden))
"""


def test_qwen_prm_with_trust_remote_code_runs_the_release_code(checkpoints, tmp_path):
    """Opted in, the release's own class (AutoModel in its auto_map; here a stand-in written like Qwen's) scores,
    each text read whole (its forward takes no cache): the same scores as the recipe by hand."""
    import shutil

    path = tmp_path / "remote"
    shutil.copytree(checkpoints["qwen_prm"], path)
    (path / "configuration_qwen2_rm.py").write_text(REMOTE_CONFIG)
    (path / "modeling_qwen2_rm.py").write_text(REMOTE_MODEL)
    prm = FamilyVerifier(str(path), "qwen_prm", device="cpu", trust_remote_code=True, split_steps=instruct_steps)
    assert type(prm.family.model.model).__name__ == "Qwen2ForProcessRewardModel"
    scores, tokens = prm.score([QUESTION] * 2, INSTRUCT)
    for solution, got, n in zip(INSTRUCT, scores, tokens):
        want, n_want = qwen_prm_by_hand(path, QUESTION, instruct_steps(solution))
        assert got == pytest.approx(want, abs=1e-5) and n == n_want


def test_the_estimate_counts_each_family_template(ci_config):
    """The compute estimate's PRM reads carry the family's template tokens, once a read and per step."""
    from infscale.core.validation import validate_config
    from infscale.estimate import (
        PRM_TEMPLATE_TOKENS,
        PROMPT_TOKENS,
        SOLUTION_STEPS,
        SOLUTION_TOKENS,
        prm_tokens_computed,
        run_tokens,
    )

    c = validate_config(ci_config)
    c["datasets"]["gsm8k"] = {"limit": 10}
    base_g, base_r = run_tokens(c, "gsm8k", "sampling", 4)
    assert base_r == 10 * 4 * (PROMPT_TOKENS["gsm8k"] + SOLUTION_TOKENS["gsm8k"])  # the policy's likelihood: none
    c["prm"].update(family="rlhflow")
    g, r = run_tokens(c, "gsm8k", "sampling", 4)
    fixed, per_step = PRM_TEMPLATE_TOKENS["rlhflow"]
    assert g == base_g and r == base_r + 10 * 4 * (fixed + per_step * SOLUTION_STEPS["gsm8k"])
    assert prm_tokens_computed(c, "gsm8k", "sampling", 4) == 10 * (
        PROMPT_TOKENS["gsm8k"] + fixed + 4 * (SOLUTION_TOKENS["gsm8k"] + per_step * SOLUTION_STEPS["gsm8k"]))
