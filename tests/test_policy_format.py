"""A policy's format is configuration (core/policy_format.py): the prompt (raw, the tokenizer's chat template or a
given template, with a system prompt), the step delimiter tree search stops at, how the answer is read and what ends
a path. The paper's format, the default, is today's: the same prompts, steps, stops and answers."""
from __future__ import annotations

import types

import pytest
import yaml
from chat_models import DEFAULT_SYSTEM, IM_END, chat_tokenizer, save_chat_policy
from scripted import ScriptedEngine, ScriptedPRM
from vllm_support import install_fake_vllm

from infscale.core import stepformat
from infscale.core.config import ConfigError, format_params
from infscale.core.policy_format import PolicyFormat, policy_format
from infscale.core.validation import validate_config
from infscale.search.engine_base import Completion, Generation, SamplingParams
from infscale.search.strategies import run_strategy

PAPER = PolicyFormat()
INSTRUCT = PolicyFormat(prompt="chat", system="Please reason step by step.", step_delimiter="\n\n", answer="boxed",
                        stop="eos")


@pytest.fixture(scope="module")
def chat_policy_dir(tmp_path_factory):
    return save_chat_policy(tmp_path_factory.mktemp("chat_policy"))


# --- the paper's format is today's ---------------------------------------------------------------------------------

def test_paper_format_is_todays_prompt_steps_and_answer():
    text = stepformat.format_solution(["2 + 3 = 5", "5 * 4 = 20"], "20") + "\n"
    assert PAPER.render_prompt("  Compute 2 + 3.  ") == stepformat.format_prompt("  Compute 2 + 3.  ") == "Compute 2 + 3.\n"
    # today's tag split, each piece without its tag and stripped
    today = [s[: -len(stepformat.STEP_TAG)].strip() if s.endswith(stepformat.STEP_TAG) else s.strip()
             for s in stepformat.split_steps(text)]
    assert PAPER.split_steps(text) == today == ["Step 1: 2 + 3 = 5", "Step 2: 5 * 4 = 20", "The answer is: 20"]
    unfinished = "Step 1: 2 + 3 = 5 ки\nThe answer is: 5"  # an answer line ended by end-of-text
    assert PAPER.split_steps(unfinished) == ["Step 1: 2 + 3 = 5", "The answer is: 5"]
    from infscale.search.prm_families import math_shepherd_steps  # what the verifier families read by default

    for t in (text, unfinished, "Step 1: a ки ки\n  ", "x"):
        assert PAPER.split_steps(t) == math_shepherd_steps(t)
    assert PAPER.states_answer(unfinished) and not PAPER.states_answer("Step 1: 2 ки")
    assert PAPER.candidate_answer(text, "stop", "toy") == "20"
    assert PAPER.candidate_answer("The answer is: 4", "length", "toy") is None  # possibly cut: today's rule
    assert PAPER.is_paper and format_params({"models": {"m": {}}}, "m") == {
        "answer": "answer_line", "prompt": "raw", "step_delimiter": "ки", "stop": "answer_line", "system": None}


# --- another format ------------------------------------------------------------------------------------------------

def test_instruct_steps_split_at_the_delimiter_answer_step_included():
    text = "First, 7 * 6 = 42.\n\n  Then 42 - 5 = 37.\n\nSo the answer is \\boxed{37}."
    assert INSTRUCT.split_steps(text) == ["First, 7 * 6 = 42.", "Then 42 - 5 = 37.", "So the answer is \\boxed{37}."]
    assert INSTRUCT.split_steps("a\n\nb\n\n") == ["a", "b"]  # a path whose last step ends at the delimiter
    assert INSTRUCT.split_steps("a\n\n\n\nb") == ["a", "", "b"]  # an empty step is a step (a tree node)
    ends = INSTRUCT.step_ends(text + "  \n")
    assert [text[e - 2 : e] for e in ends[:2]] == ["\n\n", "\n\n"] and ends[2] == len(text)


def test_boxed_answers_are_read_by_the_grader():
    assert INSTRUCT.candidate_answer("so \\boxed{\\frac{1}{2}} and \\boxed{3}.", "stop", "math500") == "3"
    assert INSTRUCT.candidate_answer("x = \\boxed{\\frac{1}{2}}", "stop", "math500") == "\\frac{1}{2}"
    assert INSTRUCT.candidate_answer("The answer is: 4", "stop", "gsm8k") is None  # not its answer format
    assert INSTRUCT.candidate_answer("so \\boxed{12", "length", "gsm8k") is None  # a box cut by the token limit
    assert INSTRUCT.states_answer("\\boxed{1}") and not INSTRUCT.states_answer("\\boxed{1")


def test_chat_prompt_is_the_tokenizers_template_with_system_and_generation_prompt():
    tok = chat_tokenizer()
    assert INSTRUCT.render_prompt(" What is 2 + 3? ", tok) == (
        "<|im_start|>system\nPlease reason step by step.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n")
    # no system prompt: the template's own default system turn
    assert PolicyFormat(prompt="chat").render_prompt("Q", tok).startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}")
    given = PolicyFormat(prompt="Problem: {question}\nSolution:")
    assert given.render_prompt(" 1 + {1}? ") == "Problem: 1 + {1}?\nSolution:"  # braces in a question are text


def test_bad_formats_name_the_config_key():
    config = {"models": {"qwen": {"format": {"answer": "last_number"}}}}
    with pytest.raises(ValueError, match="models.qwen.format.answer"):
        policy_format(config, "qwen")
    with pytest.raises(ValueError, match="system prompt needs prompt: chat"):
        PolicyFormat(system="be brief")
    with pytest.raises(ValueError, match="prompt.*holding \\{question\\}"):
        PolicyFormat(prompt="Solve it.")
    with pytest.raises(ValueError, match="has none"):
        PolicyFormat(prompt="chat").render_prompt("Q", types.SimpleNamespace(chat_template=None, name_or_path="t"))


def test_config_accepts_a_format_for_checkpoints_only():
    base = yaml.safe_load("""
datasets: {toy: {source: toy, grader: toy}}
tokenizer: {dataset: toy}
models:
  tiny: {sft_dataset: toy, arch: {hidden_size: 32, num_layers: 1, num_heads: 2}, train: {steps: 1, batch_size: 1, lr: 1.0e-3}}
  qwen: {checkpoint: Qwen/Qwen2.5-0.5B-Instruct, format: {prompt: chat, step_delimiter: "\\n\\n", answer: boxed, stop: eos}}
prm: {name: lik, source: policy_likelihood, policy: qwen}
strategies: {sampling: {temperature: 1.0, max_new_tokens: 8, budgets: [1]}}
evaluate: {datasets: [toy], models: [tiny, qwen], strategies: [sampling]}
""")
    config = validate_config(base)
    assert format_params(config, "qwen")["step_delimiter"] == "\n\n" and format_params(config, "qwen")["stop"] == "eos"
    assert "format" not in config["models"]["tiny"]  # no block: nothing added, today's params
    base["models"]["tiny"]["format"] = {"prompt": "chat"}
    with pytest.raises(ConfigError, match="models.tiny.format: a policy trained here"):
        validate_config(base)
    del base["models"]["tiny"]["format"]
    base["models"]["qwen"]["format"]["stop"] = "never"
    with pytest.raises(ConfigError, match="models.qwen.format.stop"):
        validate_config(base)


# --- tree search and sampling in another format ---------------------------------------------------------------------

class ChatScriptedEngine(ScriptedEngine):
    """Steps `s<depth>.<sibling>` ended by "\\n\\n"; the third step ends the turn (end-of-text: no delimiter)."""

    def __init__(self):
        self.calls, self.tokenizer = [], chat_tokenizer()

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        out, seen = [], {}
        for p in prompts:
            depth = p.count("\n\n") + 1
            k = seen.get(p, 0)
            seen[p] = k + 1
            text = f"r=0.{depth}{k} \\boxed{{{depth}}}" if depth == 3 else f"r=0.{depth}{k} step\n\n"
            out.append(Generation(prompt_tokens=len(p), completions=[Completion(text, 3, "stop")]))
        return out


@pytest.mark.parametrize("strategy", ["rebase", "beam_search", "dvts", "mcts"])
def test_tree_search_stops_steps_at_the_delimiter_and_finishes_at_end_of_text(strategy):
    engine = ChatScriptedEngine()
    rows = [{"id": "p1", "question": "What is 3?", "answer": "3"}]
    params = {"max_step_tokens": 8, "max_solution_tokens": 64, "max_depth": 5, "beam_width": 2}
    n = 16 if strategy == "mcts" else 4  # MCTS: expansions, enough to reach depth 3
    (record,) = run_strategy(engine, ScriptedPRM(), rows, "gsm8k", strategy, params, n, 0, INSTRUCT)
    prompt = INSTRUCT.render_prompt("What is 3?", engine.tokenizer)
    assert all(p.startswith(prompt) for prompts, _ in engine.calls for p in prompts)
    assert all(params.stop == ("\n\n",) for _, params in engine.calls)
    assert record["candidates"] and all(c["answer"] == "3" for c in record["candidates"])
    for c in record["candidates"]:  # three steps: two ended by the delimiter, the last by end-of-text
        assert len(INSTRUCT.split_steps(c["text"])) == 3 == len(c["step_scores"])
    assert not any(n["dropped"] for n in record["tree"])


def test_a_turn_ended_before_any_text_is_dropped_not_scored():
    from infscale.search.treesearch import SearchParams, Tree

    tree, sp = Tree({"id": "p", "question": "Q", "answer": "1"}, prompt="chat prompt", fmt=INSTRUCT), SearchParams()
    empty = tree.add(None, Completion("", 1, "stop"), 10, sp)  # <|im_end|> first: no step at all
    assert (empty.finished, empty.drop_reason, empty.scorable) == (False, "no_tag", False)
    step = tree.add(None, Completion("a\n\n", 3, "stop"), 10, sp)
    last = tree.add(step, Completion("", 1, "stop"), 13, sp)  # end of turn right after a step: the path is done
    assert step.open and last.finished and INSTRUCT.split_steps(tree.path_text(last)) == ["a"]
    step.reward, last.reward = 0.25, 0.5
    (candidate,) = tree.record("gsm8k")["candidates"]
    assert candidate["step_scores"] == [0.25]  # one score a step of the text: the empty last node is no step


def test_sampling_reads_the_chat_prompt_and_boxed_answers():
    engine = ChatScriptedEngine()
    rows = [{"id": "p1", "question": "What is 3?", "answer": "3"}]
    (record,) = run_strategy(engine, None, rows, "gsm8k", "sampling",
                             {"temperature": 1.0, "max_new_tokens": 8}, 1, 0, INSTRUCT)
    assert engine.calls[0][0] == [INSTRUCT.render_prompt("What is 3?", engine.tokenizer)]
    assert engine.calls[0][1].stop == ()  # sampling generates to end-of-text
    assert [c["answer"] for c in record["candidates"]] == [None]  # "r=0.10 step\n\n": no box


# --- released chat checkpoints through both engines -----------------------------------------------------------------

def test_transformers_engine_generates_from_a_chat_checkpoint(chat_policy_dir):
    from infscale.search.engines import TransformersEngine

    engine = TransformersEngine(str(chat_policy_dir), batch_size=8)
    tok = engine.tokenizer
    seen, generate = [], engine.model.generate

    def spy(input_ids, attention_mask, **kwargs):
        seen.append(([row[m.bool()].tolist() for row, m in zip(input_ids, attention_mask)], kwargs["eos_token_id"]))
        return generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    engine.model.generate = spy
    prompt = INSTRUCT.render_prompt("What is 2 + 3?", tok)
    (gen,) = engine.generate([prompt], SamplingParams(n=16, temperature=1.0, max_new_tokens=24, stop=("\n\n",)))
    ids, eos = seen[0]
    im_start, im_end = tok.convert_tokens_to_ids("<|im_start|>"), tok.convert_tokens_to_ids(IM_END)
    # the template's special tokens are read as the special tokens (one id each), no BOS is added
    assert ids[0][0] == im_start and ids[0].count(im_end) == 2 and gen.prompt_tokens == len(ids[0])
    assert ids[0] == tok.encode(prompt, add_special_tokens=False)
    assert set(eos) == {im_end, tok.convert_tokens_to_ids("<|endoftext|>")}  # generation_config's end ids
    reasons = {c.text.endswith("\n\n") for c in gen.completions}
    assert reasons == {True, False}  # some steps stop at the delimiter, some turns end at <|im_end|>
    assert all("<|im_end|>" not in c.text for c in gen.completions)


def test_vllm_engine_gets_the_chat_prompt_ids_and_the_end_of_turn(chat_policy_dir, monkeypatch):
    seen = install_fake_vllm(monkeypatch, max_model_len=512)
    from infscale.search.vllm_engine import VLLMEngine

    engine = VLLMEngine(str(chat_policy_dir))
    tok = engine.tokenizer
    prompt = INSTRUCT.render_prompt("What is 2 + 3?", tok)
    engine.generate([prompt], SamplingParams(n=1, temperature=1.0, max_new_tokens=4, stop=("\n\n",)))
    assert seen.prompts == [tok.encode(prompt, add_special_tokens=False)]
    assert seen.prompts[0][0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert seen.sampling[0]["stop"] == ["\n\n"]
    assert seen.sampling[0]["stop_token_ids"] == [tok.convert_tokens_to_ids("<|endoftext|>")]  # besides <|im_end|>


def test_a_bos_written_by_the_template_is_not_added_twice():
    from infscale.search.engine_base import encode_prompt

    class Tok:  # Llama-3's template writes <|begin_of_text|>, which its tokenizer would also add
        def encode(self, text, add_special_tokens=False):
            return [1] + [ord(c) for c in text[3:]] if text.startswith("<s>") else [ord(c) for c in text]

    assert encode_prompt(Tok(), [1], "<s>hi") == [1, ord("h"), ord("i")]
    assert encode_prompt(Tok(), [1], "hi") == [1, ord("h"), ord("i")]
    assert encode_prompt(Tok(), [], "hi") == [ord("h"), ord("i")]


# --- the policy-likelihood verifier reads what the policy read ------------------------------------------------------

def test_policy_likelihood_reads_the_chat_prompt_and_scores_each_step(chat_policy_dir):
    import math

    import torch
    from transformers import AutoModelForCausalLM

    from infscale.search.verifiers import load_verifier

    verifier = {"kind": "policy_likelihood", "a": 0.0, "b": 1.0, "token_score": "logprob", "step_reduction": "sum"}
    v = load_verifier(str(chat_policy_dir), verifier, fmt=INSTRUCT, device="cpu")
    question, solution = "What is 2 + 3?", "2 + 3 = 5.\n\nSo \\boxed{5}"
    (scores,), (tokens,) = v.score([question], [solution])
    # independently: the chat prompt's ids, then the solution's; log-probabilities summed per step
    tok = v.tokenizer
    prompt = tok.encode(INSTRUCT.render_prompt(question, tok), add_special_tokens=False)
    step_texts = ["2 + 3 = 5.\n\n", "So \\boxed{5}"]
    assert tok.encode(solution, add_special_tokens=False) == [i for s in step_texts
                                                             for i in tok.encode(s, add_special_tokens=False)]
    ids = prompt + tok.encode(solution, add_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(chat_policy_dir).eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    expected, start, running = [], len(prompt), 0.0
    for s in step_texts:
        n = len(tok.encode(s, add_special_tokens=False))
        running += sum(float(logp[t - 1, ids[t]]) for t in range(start, start + n))
        expected.append(1 / (1 + math.exp(-running)))
        start += n
    assert tokens == len(ids)
    assert scores == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("path", ["config.yaml", "config/paper.yaml", "config/ci.yaml"])
def test_the_default_and_the_papers_studies_keep_the_papers_format(path):
    from pathlib import Path

    config = validate_config(yaml.safe_load((Path(__file__).resolve().parents[1] / path).read_text()))
    # every policy trained or fine-tuned here writes the paper's steps; only Table 3's released instruct model
    # (config/paper.yaml, MBPP) reads its chat template
    released = {m for m, block in config["models"].items() if "checkpoint" in block and "format" in block}
    assert released == ({"llama3-8b-instruct"} if path == "config/paper.yaml" else set())
    assert all(policy_format(config, m) == PAPER for m in config["models"] if m not in released)
    for m in released:
        assert policy_format(config, m).prompt == "chat"
