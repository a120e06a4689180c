"""benchmarks/gpu_check.py runs on the CPU (`--device cpu`) before a GPU sees it: every check passes, the report
names each check with its time."""
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_on_cpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # restored after: the script hides GPUs for --device cpu
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    out = tmp_path / "report.json"
    assert gpu_check.main(["--device", "cpu", "--out", str(out), "--workdir", str(tmp_path / "work")]) == 0
    report = json.loads(out.read_text())
    assert report["ok"] and report["environment"]["device"] == "cpu"
    checks = {c["check"]: c for c in report["checks"]}
    for family in gpu_check.FAMILIES:
        row = checks[f"score: {family}"]
        assert row["ok"] and row["steps_scored"] >= row["candidates"] and row["tokens_read"] > 0
    assert all(checks[f"score: {f}"]["max_abs_diff_shared_vs_whole"] < 1e-4 for f in gpu_check.FAMILIES[1:])
    for arch in gpu_check.POLICIES:
        assert checks[f"generate: {arch} policy, transformers engine"]["generated_tokens"] > 0
    sft = next(c for name, c in checks.items() if name.startswith("sft:"))
    assert sft["steps"] == 4 and sft["train_loss"] > 0
    assert all(c["seconds"] >= 0 for c in report["checks"])
    assert "score: qwen_prm" in out.with_suffix(".md").read_text()
