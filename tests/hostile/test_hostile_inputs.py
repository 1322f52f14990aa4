"""Hostile but fair inputs to every command: broken checkpoints and adapters, odd option values,
malformed and adversarial response files, corrupted run folders and board configs, unwritable
outputs, path tricks. Each case must fail (or, where marked, succeed) by the contract in
``conftest.py``: exit 2, one line naming the problem, no traceback, nothing written outside the
case's folder, the finished run untouched.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile_harness import (
    FLORES,
    Env,
    adapter_copy,
    call,
    copy_run,
    jsonl,
    model_copy,
    tree_digest,
    write,
)


@dataclass(frozen=True)
class Case:
    """argv built in a fresh folder; `expect`: words the one error line must contain."""

    id: str
    argv: Callable[[Env, Path], list[str]]
    expect: tuple[str, ...]
    code: int = 2


def _run(model: str | Path, *more: str) -> list[str]:
    return ["run", str(model), "-t", FLORES, "--limit", "2", "--max-new-tokens", "4", *more]


def _cfg_mut(text: str) -> Callable[[Path], None]:
    return lambda d: write(d / "config.json", text)


def _truncate(name: str, keep: int) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        p = d / name
        p.write_bytes(p.read_bytes()[:keep])
    return f


def _unlink(*names: str) -> Callable[[Path], None]:
    def f(d: Path) -> None:
        for n in names:
            (d / n).unlink(missing_ok=True)
    return f


def _model(mut: Callable[[Path], None] | None) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: _run(model_copy(e, t / "m", mut), "--out", str(t / "o"))


def _adapter(mut: Callable[[Path], None] | None, *more: str) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: _run(e.model, "--adapter", str(adapter_copy(e, t / "a", mut)), *more,
                             "--out", str(t / "o"))


def _opt(*more: str) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: _run(e.model, *more, "--out", str(t / "o"))


def _other_base_adapter(e: Env, t: Path) -> list[str]:
    from evalkit.testing import build_tiny_adapter, build_tiny_model

    other = build_tiny_model(t / "wide", hidden=96)
    a = build_tiny_adapter(other, t / "a-wide")
    return _run(e.model, "--adapter", str(a), "--out", str(t / "o"))


def _two_labels(e: Env, t: Path) -> list[str]:
    from evalkit.testing import build_tiny_adapter

    b = build_tiny_adapter(e.model, t / "b", seed=5)
    return _run(e.model, "--adapter", f"x={e.adapter}", "--adapter", f"x={b}",
                "--out", str(t / "o"))


def _bad_shapes(d: Path) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg["hidden_size"] = cfg["hidden_size"] * 2
    (d / "config.json").write_text(json.dumps(cfg))


RUN_CASES = [
    Case("model-missing", lambda e, t: _run(t / "nope", "--out", str(t / "o")),
         ("does not exist",)),
    Case("model-no-config", _model(_unlink("config.json")), ("no config.json",)),
    Case("model-config-corrupt", _model(_cfg_mut("{not json")), ("not valid JSON",)),
    Case("model-config-empty-object", _model(_cfg_mut("{}")), ("model_type",)),
    Case("model-config-list", _model(_cfg_mut("[1, 2]")), ("JSON list",)),
    Case("model-config-unknown-type", _model(_cfg_mut('{"model_type": "nonesuch"}')),
         ("nonesuch",)),
    Case("model-config-empty-file", _model(_cfg_mut("")), ("not valid JSON",)),
    Case("model-weights-truncated", _model(_truncate("model.safetensors", 5000)), ("truncated",)),
    Case("model-weights-garbage", _model(lambda d: write(d / "model.safetensors", b"\x00" * 64)),
         ("safetensors",)),
    Case("model-no-weights", _model(_unlink("model.safetensors")), ("no weights",)),
    Case("model-no-tokenizer", _model(_unlink("tokenizer.json", "tokenizer_config.json",
                                              "special_tokens_map.json")), ("tokenizer",)),
    Case("model-tokenizer-corrupt", _model(lambda d: write(d / "tokenizer.json", "{bad")),
         ("tokenizer",)),
    Case("model-shapes-mismatch", _model(_bad_shapes), ("weights",)),
    Case("model-is-a-file", lambda e, t: _run(write(t / "f.bin", "x"), "--out", str(t / "o")),
         ("does not exist",)),
    Case("adapter-missing", lambda e, t: _run(e.model, "--adapter", str(t / "no-adapter"),
                                              "--out", str(t / "o")), ("does not exist",)),
    Case("adapter-config-list", _adapter(lambda d: write(d / "adapter_config.json", "[1]")),
         ("JSON list",)),
    Case("adapter-config-corrupt", _adapter(lambda d: write(d / "adapter_config.json", "{")),
         ("not valid JSON",)),
    Case("adapter-no-config", _adapter(_unlink("adapter_config.json")),
         ("no adapter_config.json",)),
    Case("adapter-no-weights", _adapter(_unlink("adapter_model.safetensors")),
         ("no adapter_model",)),
    Case("adapter-weights-truncated", _adapter(_truncate("adapter_model.safetensors", 300)),
         ("truncated",)),
    Case("adapter-rank-not-int", _adapter(lambda d: write(
        d / "adapter_config.json", json.dumps({**json.loads((d / "adapter_config.json")
                                                           .read_text()), "r": "big"}))),
        ("r",)),
    Case("adapter-other-base", _other_base_adapter, ("adapter",)),
    Case("adapter-twice", lambda e, t: _run(e.model, "--adapter", str(e.adapter), "--adapter",
                                            str(e.adapter), "--out", str(t / "o")),
         ("same weights",)),
    Case("adapter-label-clash", _two_labels, ("labelled",)),
    Case("merge-two-adapters", lambda e, t: _run(e.model, "--merge-adapter", "--adapter",
                                                 str(e.adapter), "--adapter",
                                                 str(adapter_copy(e, t / "b", _bad_shapes_a)),
                                                 "--out", str(t / "o")), ("exactly one",)),
    Case("merge-no-adapter", _opt("--merge-adapter"), ("exactly one",)),
    Case("no-base-no-adapter", _opt("--no-base"), ("nothing to evaluate",)),
    Case("limit-zero", _opt("--limit", "0"), ("--limit",)),
    Case("limit-negative", _opt("--limit", "-2"), ("--limit",)),
    Case("limit-not-int", _opt("--limit", "many"), ("--limit",)),
    Case("max-new-zero", _opt("--max-new-tokens", "0"), ("--max-new-tokens",)),
    Case("max-new-negative", _opt("--max-new-tokens", "-5"), ("--max-new-tokens",)),
    Case("batch-zero", _opt("--batch-size", "0"), ("--batch-size",)),
    Case("batch-negative", _opt("--batch-size", "-1"), ("--batch-size",)),
    Case("batch-word", _opt("--batch-size", "lots"), ("--batch-size",)),
    Case("max-model-len-tiny", _opt("--max-model-len", "4"), ("--max-model-len",)),
    Case("max-model-len-zero", _opt("--max-model-len", "0"), ("--max-model-len",)),
    Case("device-cuda-on-cpu", _opt("--device", "cuda"), ("cuda",)),
    Case("device-nonsense", _opt("--device", "quantum:7"), ("device",)),
    Case("dtype-nonsense", _opt("--dtype", "float8"), ("dtype",)),
    Case("chat-template-nonsense", _opt("--chat-template", "maybe"), ("--chat-template",)),
    Case("seed-negative", _opt("--seed", "-1"), ("--seed",)),
    Case("tp-zero", _opt("--backend", "vllm", "--tensor-parallel-size", "0"),
         ("--tensor-parallel-size",)),
    Case("dp-zero", _opt("--backend", "vllm", "--data-parallel-size", "0"),
         ("--data-parallel-size",)),
    Case("gpu-mem-over-one", _opt("--backend", "vllm", "--gpu-memory-utilization", "1.5"),
         ("--gpu-memory-utilization",)),
    Case("lora-rank-zero", _opt("--backend", "vllm", "--max-lora-rank", "0"),
         ("--max-lora-rank",)),
    Case("vllm-option-on-hf", _opt("--tensor-parallel-size", "2"),
         ("--tensor-parallel-size", "vllm")),
    Case("task-unknown", lambda e, t: ["run", str(e.model), "-t", "nosuch:task", "--out",
                                       str(t / "o")], ("unknown task",)),
    Case("task-empty", lambda e, t: ["run", str(e.model), "-t", ",", "--out", str(t / "o")],
         ("no tasks",)),
    Case("task-none", lambda e, t: ["run", str(e.model), "--out", str(t / "o")], ("no tasks",)),
    Case("task-path-trick", lambda e, t: ["run", str(e.model), "-t", "flores:../../etc-x",
                                          "--out", str(t / "o")], ("flores",)),
    Case("task-unknown-language", lambda e, t: ["run", str(e.model), "-t",
                                                "flores:eng_Latn-xxx_Latn", "--out",
                                                str(t / "o")], ("xxx",)),
    Case("suite-unknown", lambda e, t: ["run", str(e.model), "--suite", "sagaa", "--out",
                                        str(t / "o")], ("unknown suite",)),
    Case("backend-unknown", _opt("--backend", "tpu"), ("unknown backend",)),
    Case("backend-scripted", _opt("--backend", "scripted"), ("tests only",)),
    Case("option-no-equals", _opt("-o", "judge"), ("KEY=VALUE",)),
    Case("option-empty-key", _opt("-o", "=rule"), ("KEY=VALUE",)),
    Case("judge-unknown-before-generation", lambda e, t: [
        "run", str(e.model), "-t", "safety:en", "--limit", "1", "-o", "judge=bogus:thing",
        "--out", str(t / "o")], ("judge",)),
    Case("oracle-unknown-before-generation", lambda e, t: [
        "run", str(e.model), "-t", "nb_parse:2", "-o", "oracles=nope", "--out", str(t / "o")],
        ("oracle",)),
    Case("hub-option-path-trick", lambda e, t: [
        "run", str(e.model), "-t", "safety:en:hub=../../etc", "--limit", "1",
        "--out", str(t / "o")], ("hub",)),
    Case("out-is-a-file", lambda e, t: _run(e.model, "--out", str(write(t / "o.txt", "x"))),
         ("is a file",)),
    Case("out-unwritable", lambda e, t: _run(e.model, "--out", "/proc/evalkit-hostile"),
         ("not writable",)),
    Case("data-dir-missing", _opt("--data-dir", "/nonexistent/mirror"), ("data",)),
    Case("data-dir-empty", lambda e, t: _run(e.model, "--data-dir", str(_mkdir(t / "empty")),
                                             "--out", str(t / "o")), ("mirror",)),
    Case("usage-missing-model", lambda e, t: ["run", "-t", FLORES], ("MODEL",)),
    Case("usage-unknown-flag", lambda e, t: ["run", str(e.model), "--frobnicate"],
         ("frobnicate",)),
    Case("usage-unknown-command", lambda e, t: ["frobnicate"], ("frobnicate",)),
]


def _bad_shapes_a(d: Path) -> None:
    """A second, different adapter (for cases needing two)."""
    p = d / "adapter_model.safetensors"
    data = bytearray(p.read_bytes())
    data[-8:] = bytes(8)
    p.write_bytes(bytes(data))


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _responses(text: str | bytes, task: str = FLORES) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: ["score", "--task", task, "--responses", str(write(t / "r.jsonl", text))]


_GOOD_ID = "devtest-0000"

SCORE_CASES = [
    Case("responses-missing", lambda e, t: ["score", "--task", FLORES, "--responses",
                                            str(t / "none.jsonl")], ("not found",)),
    Case("responses-empty", _responses(""), ("no responses",)),
    Case("responses-blank-lines", _responses("\n\n  \n"), ("no responses",)),
    Case("responses-garbage-line",
         _responses('{"id": "devtest-0000", "response": "x"}\nnot json\n'),
         (":2",)),
    Case("responses-cut-mid-line",
         _responses('{"id": "devtest-0000", "response": "x"}\n{"id": "1", "resp'),
         (":2",)),
    Case("responses-list-line", _responses("[1, 2]\n"), ("object",)),
    Case("responses-number-line", _responses("5\n"), ("object",)),
    Case("responses-lone-surrogate",
         _responses('{"id": "devtest-0000", "response": "a\\ud800b"}\n'),
         ("surrogate",)),
    Case("responses-huge-int",
         _responses('{"id": "devtest-0000", "response": "x", "n": ' + "9" * 5000 + "}\n"),
         (":1",)),
    Case("responses-deep-array", _responses('{"id": "devtest-0000", "response": "x", "a": '
                                            + "[" * 100_000 + "]" * 100_000 + "}\n"), (":1",)),
    Case("responses-no-response", _responses('{"id": "devtest-0000"}\n'), ("response",)),
    Case("responses-response-number", _responses('{"id": "devtest-0000", "response": 5}\n'),
         ("response",)),
    Case("responses-response-null", _responses('{"id": "devtest-0000", "response": null}\n'),
         ("response",)),
    Case("responses-unknown-id", _responses('{"id": "no-such-id", "response": "x"}\n'),
         ("unknown sample id",)),
    Case("responses-duplicate-id", _responses(jsonl([{"id": _GOOD_ID, "response": "a"},
                                                     {"id": _GOOD_ID, "response": "b"}])),
         ("twice",)),
    Case("responses-no-id-no-prompt", _responses('{"response": "x"}\n'), ("id",)),
    Case("responses-prompt-unmatched", _responses('{"prompt": "zzz", "response": "x"}\n'),
         ("prompt",)),
    Case("responses-invalid-utf8", _responses(b'{"id": "devtest-0000", "response": "\xff\xfe"}\n'),
         ("UTF-8",)),
    Case("responses-bom-nul", _responses(b'\x00\x00{"id": "devtest-0000"}\n'), (":1",)),
    Case("responses-is-dir", lambda e, t: ["score", "--task", FLORES, "--responses",
                                           str(_mkdir(t / "d"))], ("directory",)),
    Case("score-task-unknown", lambda e, t: ["score", "--task", "nosuch", "--responses",
                                             str(write(t / "r.jsonl", "{}"))], ("unknown task",)),
    Case("score-task-without-responses", lambda e, t: ["score", "--task", FLORES],
         ("--responses",)),
    Case("score-responses-without-task", lambda e, t: ["score", "--responses",
                                                       str(write(t / "r.jsonl", "{}"))],
         ("--task",)),
    Case("score-nothing", lambda e, t: ["score"], ("run directory",)),
    Case("score-seed-negative", lambda e, t: ["score", str(e.good_variant), "--seed", "-4"],
         ("--seed",)),
]


def _variant(run: Path) -> Path:
    return next(d for d in run.iterdir() if (d / "summary.jsonl").exists() and "+" not in d.name)


def _corrupt_samples(mut: Callable[[str], str]) -> Callable[[Env, Path], list[str]]:
    def f(e: Env, t: Path) -> list[str]:
        v = _variant(copy_run(e, t / "run"))
        p = next((v / "samples").glob("*.jsonl"))
        p.write_text(mut(p.read_text()))
        return ["score", str(v)]
    return f


def _corrupt_summary(mut: Callable[[str], str], cmd: str = "score"
                     ) -> Callable[[Env, Path], list[str]]:
    def f(e: Env, t: Path) -> list[str]:
        run = copy_run(e, t / "run")
        v = _variant(run)
        p = v / "summary.jsonl"
        p.write_text(mut(p.read_text()))
        return ["score", str(v)] if cmd == "score" else ["leaderboard", str(run), "--no-plots",
                                                          "--out", str(t / "board")]
    return f


RECORD_CASES = [
    Case("run-dir-missing", lambda e, t: ["score", str(t / "nope")], ("not a run directory",)),
    Case("run-dir-no-samples", lambda e, t: ["score", str(_mkdir(t / "x"))],
         ("not a run directory",)),
    Case("run-dir-is-file", lambda e, t: ["score", str(write(t / "f", "x"))],
         ("not a run directory",)),
    Case("samples-cut-mid-line", _corrupt_samples(lambda s: s[: len(s) - 40]),
         ("unreadable",)),
    Case("samples-garbage-line", _corrupt_samples(lambda s: "garbage\n" + s), ("unreadable",)),
    Case("samples-empty", _corrupt_samples(lambda s: ""), ("no sample records",)),
    Case("samples-unknown-task", _corrupt_samples(
        lambda s: s.replace(FLORES, "nosuch:task")), ("unknown task",)),
    Case("samples-future-schema", _corrupt_samples(
        lambda s: s.replace('"schema_version":2', '"schema_version":99')), ("unreadable",)),
    Case("samples-ids-not-in-task", _corrupt_samples(
        lambda s: s.replace('"sample_id":"', '"sample_id":"zz')), ("not in task",)),
    Case("leaderboard-runs-missing", lambda e, t: ["leaderboard", str(t / "nope")],
         ("no such run directory",)),
    Case("leaderboard-no-records", lambda e, t: ["leaderboard", str(_mkdir(t / "empty"))],
         ("no run records",)),
]


def _board_cfg(text: str) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: ["leaderboard", str(e.good_run), "--config",
                         str(write(t / "board.toml", text)), "--out", str(t / "board"),
                         "--no-plots"]


_TASK = f'[[tasks]]\ntask = "{FLORES}"\n'

BOARD_CASES = [
    Case("board-config-missing", lambda e, t: ["leaderboard", str(e.good_run), "--config",
                                               str(t / "none.toml")], ("not found",)),
    Case("board-config-not-toml", _board_cfg("this is [not toml"), ("not valid TOML",)),
    Case("board-config-unknown-key", _board_cfg("colour = 'red'\n" + _TASK), ("colour",)),
    Case("board-config-no-tasks", _board_cfg("title = 'x'\n"), ("tasks",)),
    Case("board-config-alpha-two", _board_cfg("alpha = 2\n" + _TASK), ("alpha",)),
    Case("board-config-absolute-name", _board_cfg("name = '/tmp/evil'\n" + _TASK), ("name",)),
    Case("board-config-dotdot-name", _board_cfg("name = '../../evil'\n" + _TASK), ("name",)),
    Case("board-config-task-twice", _board_cfg(_TASK + _TASK), ("twice",)),
    Case("board-config-rank-metric", _board_cfg(_TASK + "metrics = ['bleu']\n"
                                                "rank_metric = 'chrf'\n"), ("rank_metric",)),
    Case("board-test-nonsense", lambda e, t: ["leaderboard", str(e.good_run), "--test", "zz",
                                              "--out", str(t / "b")], ("--test",)),
    Case("board-out-is-file", lambda e, t: ["leaderboard", str(e.good_run), "--no-plots",
                                            "--out", str(write(t / "f", "x"))], ("file",)),
    Case("board-config-name-unknown", lambda e, t: ["leaderboard", str(e.good_run), "--config",
                                                    "no-such-board"], ("not found",)),
]


def _dpo(text: str, *more: str) -> Callable[[Env, Path], list[str]]:
    return lambda e, t: ["dpo", str(write(t / "dpo.toml", text.replace("MODEL", str(e.model)))),
                         "--out", str(t / "dpo-out"), *more]


DPO_CASES = [
    Case("dpo-config-missing", lambda e, t: ["dpo", str(t / "none.toml")], ("not found",)),
    Case("dpo-config-empty", _dpo(""), ("empty",)),
    Case("dpo-config-not-toml", _dpo("model = "), ("TOML",)),
    Case("dpo-config-unknown-key", _dpo('model = "MODEL"\nfrobnicate = 1\n'), ("frobnicate",)),
    Case("dpo-heldout-is-train", _dpo('model = "MODEL"\n[oracles]\ntrain = "fake"\n'
                                      'heldout = "fake"\n'), ("held-out",)),
    Case("dpo-oracle-unknown", _dpo('model = "MODEL"\n[oracles]\ntrain = "nope"\n'),
         ("oracle",)),
    Case("dpo-model-missing", _dpo('model = "/nonexistent/model"\n'), ("does not exist",)),
    Case("dpo-out-is-file", lambda e, t: ["dpo", str(write(t / "c.toml", f'model = "{e.model}"\n')),
                                          "--out", str(write(t / "f", "x"))], ("file",)),
]

MERGE_CASES = [
    Case("merge-missing-inputs", lambda e, t: ["merge", "diploma", "--out", str(t / "m")],
         ("--base",)),
    Case("merge-unknown-recipe", lambda e, t: ["merge", "frankenstein", "--out", str(t / "m")],
         ("recipe",)),
    Case("merge-alpha-nan", lambda e, t: ["merge", "diploma", "--base", str(e.model), "--cpt",
                                          str(e.model), "--instruct", str(e.model),
                                          "--alpha", "nan", "--out", str(t / "m")], ("alpha",)),
    Case("merge-out-is-file", lambda e, t: ["merge", "diploma", "--base", str(e.model), "--cpt",
                                            str(e.model), "--instruct", str(e.model),
                                            "--out", str(write(t / "f", "x"))], ("file",)),
    Case("sweep-alpha-words", lambda e, t: ["sweep", "diploma", "--base", str(e.model), "--cpt",
                                            str(e.model), "--instruct", str(e.model), "--alpha",
                                            "a,b", "-t", FLORES, "--out", str(t / "o")],
         ("alpha",)),
    Case("sweep-alpha-empty", lambda e, t: ["sweep", "diploma", "--base", str(e.model), "--cpt",
                                            str(e.model), "--instruct", str(e.model), "--alpha",
                                            "", "-t", FLORES, "--out", str(t / "o")], ("alpha",)),
    Case("sweep-limit-zero", lambda e, t: ["sweep", "diploma", "--base", str(e.model), "--cpt",
                                           str(e.model), "--instruct", str(e.model), "-t", FLORES,
                                           "--limit", "0", "--out", str(t / "o")], ("--limit",)),
]

ORACLE_CASES = [
    Case("oracle-validate-unknown", lambda e, t: ["oracle", "validate", "--oracle", "nope"],
         ("oracle",)),
]

ALL = RUN_CASES + SCORE_CASES + RECORD_CASES + BOARD_CASES + DPO_CASES + MERGE_CASES + \
    ORACLE_CASES


@pytest.mark.parametrize("case", ALL, ids=[c.id for c in ALL])
def test_hostile_input(case: Case, env: Env, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    argv = case.argv(env, tmp_path)
    before_run = tree_digest(env.good_run)
    cwd_before = set(os.listdir(work))
    res = call(argv, work)
    assert "Traceback" not in res.err, res.err[-3000:]
    assert res.code == case.code, (res.code, res.err[-2000:], res.out[-1000:])
    lines = res.error_lines
    assert len(lines) == 1, lines
    assert lines[0].startswith("evalkit: error:"), lines
    for word in case.expect:
        assert word.lower() in lines[0].lower(), (word, lines[0])
    assert tree_digest(env.good_run) == before_run  # nothing computed changed
    assert set(os.listdir(work)) == cwd_before  # nothing written where it does not belong
    for p in (Path("/tmp/evil"), env.root / "evil", tmp_path.parent / "evil"):
        assert not p.exists()
