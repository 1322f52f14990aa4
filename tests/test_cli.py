"""The command line: instant --help, one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = {"torch", "vllm", "spacy", "stanza", "transformers", "lm_eval", "trl", "peft"}


def _evalkit(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=600)


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; sys.argv=['evalkit','--help']\nimport evalkit.cli as c\n"
            "try:\n    c.app()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(set({sorted(HEAVY)!r}) & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert "run" in out.stdout and "score" in out.stdout


def test_tasks_lists_families_without_importing_them() -> None:
    code = ("import sys; sys.argv=['evalkit','tasks']\nimport evalkit.cli as c\n"
            "try:\n    c.app()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('evalkit.tasks.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "flores" in out.stdout and "nb_parse" in out.stdout and "saga" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    from evalkit.testing import error_lines

    lines = error_lines(res.stderr)
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("evalkit: error:")
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_unknown_model_path(tmp_path: Path) -> None:
    res = _evalkit("run", str(tmp_path / "nope"), "--tasks", "flores:eng_Latn-nob_Latn")
    _one_line_error(res, "does not exist")


def test_model_dir_without_config(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    res = _evalkit("run", str(tmp_path / "m"), "--tasks", "flores:eng_Latn-nob_Latn")
    _one_line_error(res, "config.json")


def test_option_of_another_backend_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    res = _evalkit("run", str(tiny_model), "--tasks", "ppl:nob", "--limit", "2", "--backend",
                   "hf", "--tensor-parallel-size", "2", "--out", str(tmp_path))
    _one_line_error(res, "--tensor-parallel-size", "vllm backend", "--backend hf")


def test_unknown_task_did_you_mean(tiny_model: Path) -> None:
    res = _evalkit("run", str(tiny_model), "--tasks", "floris:eng_Latn-nob_Latn")
    _one_line_error(res, "unknown task", "flores")


def test_unknown_language_code(tiny_model: Path) -> None:
    res = _evalkit("run", str(tiny_model), "--tasks", "flores:eng_Latn-nob_Latm")
    _one_line_error(res, "nob_Latn")


def test_malformed_adapter_dir(tiny_model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "adapter"
    bad.mkdir()
    (bad / "adapter_config.json").write_text("{not json")
    res = _evalkit("run", str(tiny_model), "--adapter", str(bad), "--tasks",
                   "flores:eng_Latn-nob_Latn")
    _one_line_error(res, "malformed adapter dir")
    (bad / "adapter_config.json").write_text(json.dumps({"r": 4}))
    res = _evalkit("run", str(tiny_model), "--adapter", str(bad), "--tasks",
                   "flores:eng_Latn-nob_Latn")
    _one_line_error(res, "adapter_model")


def test_missing_data_without_network(tiny_model: Path, tmp_path: Path) -> None:
    empty = tmp_path / "mirror"
    empty.mkdir()
    res = _evalkit("run", str(tiny_model), "--tasks", "flores:eng_Latn-nob_Latn",
                   "--data-dir", str(empty), "--out", str(tmp_path / "runs"),
                   env={"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    _one_line_error(res, "flores200/devtest/eng_Latn.devtest", "openlanguagedata/flores_plus")


@pytest.mark.parametrize("content,needle", [
    (b'{"id": "devtest-0000", "response": "Hei"}\n{"id": oops}\n', "malformed JSON"),
    (b'{"id": "devtest-0000", "response": "\xff\xfe"}\n', "invalid UTF-8"),
    (b'{"id": "no-such-id", "response": "Hei"}\n', "unknown sample id"),
    (b'{"response": "Hei"}\n', "needs an 'id'"),
])
def test_bad_responses_file(tmp_path: Path, data_dir: Path, content: bytes, needle: str) -> None:
    f = tmp_path / "responses.jsonl"
    f.write_bytes(content)
    res = _evalkit("score", "--task", "flores:eng_Latn-nob_Latn", "--responses", str(f))
    _one_line_error(res, needle)


def test_score_external_responses_json(tmp_path: Path, data_dir: Path) -> None:
    refs = gzip.decompress((data_dir / "flores200/devtest/nob_Latn.devtest.gz").read_bytes()
                           ).decode().splitlines()
    src = gzip.decompress((data_dir / "flores200/devtest/eng_Latn.devtest.gz").read_bytes()
                          ).decode().splitlines()
    f = tmp_path / "responses.jsonl"
    rows = [{"id": "devtest-0000", "response": refs[0]},
            {"prompt": f"English sentence: {src[1]}\nNorwegian Bokmål sentence:",
             "response": ""},
            {"id": "devtest-0002", "response": "noe helt annet"}]
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    res = _evalkit("score", "--task", "flores:eng_Latn-nob_Latn", "--responses", str(f), "--json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert [s["id"] for s in doc["samples"]] == ["devtest-0000", "devtest-0001", "devtest-0002"]
    assert doc["samples"][1]["empty"] is True
    import sacrebleu

    expect = sacrebleu.corpus_chrf([refs[0], "", "noe helt annet"], [refs[:3]]).score
    assert doc["metrics"]["chrf"]["value"] == pytest.approx(expect)


SIGNALS_IN_PROCESS = """
import contextlib, io, signal, sys
from evalkit import cli

def mine(signum, frame):
    pass

signal.signal(signal.SIGTERM, mine)
signal.signal(signal.SIGINT, signal.SIG_IGN)
seen = []
real_app = cli.app
def app(**kw):
    seen.append((signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)))
    return real_app(**kw)
cli.app = app
for argv in (["evalkit", "tasks"], ["evalkit", "run"]):  # success, then a usage error (exit 2)
    sys.argv = argv
    code = 0
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code
    print("exit", code)
    assert signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
assert seen == [(cli._terminate, signal.default_int_handler)] * 2, seen
print("handlers restored")
"""


def test_in_process_main_gives_the_callers_signal_handlers_back() -> None:
    """While a command runs, SIGTERM stops it like Ctrl-C; afterwards (success or error) the
    caller's own handlers are back — a handler left behind is inherited by every process the
    caller forks, where a SIGTERM arriving right after the fork is lost."""
    res = subprocess.run([sys.executable, "-c", SIGNALS_IN_PROCESS], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["exit", "0", "exit", "2", "handlers", "restored"]
