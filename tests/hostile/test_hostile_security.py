"""Security of outputs, paths and credentials; oracles and readers under adversarial strings."""

from __future__ import annotations

import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from hostile_harness import FLORES, Env, call, write

from evalkit.errors import BadInput
from evalkit.records import RunSummary


def _summary(model: str, task: str = FLORES, **kw: object) -> RunSummary:
    base = dict(run_id="x@1", created_at="2026-01-01T00:00:00", task=task, task_version="1",
                language="nob_Latn", model=model, model_hash=f"h-{model}", backend="hf",
                metrics={"chrf": {"value": 50.0, "n": 4}}, n_samples=4,
                sample_ids_sha256="s", chat_template={}, seed=0, data_hashes={}, versions={})
    base.update(kw)
    return RunSummary(**base)  # type: ignore[arg-type]


HOSTILE_NAMES = ['<img src=x onerror=alert(1)>', '=HYPERLINK("http://evil","x")',
                 "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3", "a|b | c", "`code` **bold**"]


def test_board_outputs_escape_names_for_their_format(tmp_path: Path) -> None:
    from evalkit.leaderboard.build import generate

    runs = tmp_path / "runs"
    for i, name in enumerate(HOSTILE_NAMES):
        d = runs / f"v{i}"
        write(d / "summary.jsonl", _summary(name).model_dump_json() + "\n")
    generate([runs], None, tmp_path / "board")
    md = (tmp_path / "board" / "board.md").read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "a\\|b \\| c" in md  # a pipe cannot open a new table cell
    for f in ("board.csv", "board_long.csv"):
        import csv

        rows = list(csv.reader((tmp_path / "board" / f).open(encoding="utf-8")))
        cells = [c for r in rows[1:] for c in r]
        for c in cells:
            if c[:1] in ("=", "+", "@") or (c[:1] == "-" and not _is_number(c)):
                pytest.fail(f"{f}: formula-like cell {c!r}")
        assert "'+cmd|' /C calc'!A0" in cells and "'@SUM(1+1)" in cells
    html = (tmp_path / "board" / "index.html").read_text()
    assert "<img src=x" not in html


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def test_planted_board_config_cannot_write_outside(env: Env, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for i, evil in enumerate(("../../escaped", str(tmp_path / "abs-escaped"))):
        write(out / "leaderboards" / f"planted{i}.toml",
              f'name = "{evil}"\n[[tasks]]\ntask = "{FLORES}"\n')
    res = call(["run", str(env.model), "-t", FLORES, "--limit", "2", "--max-new-tokens", "4",
                "--out", str(out)], tmp_path)
    assert res.code == 0, res.err
    assert "leaderboard configs not read" in res.err and "name" in res.err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "abs-escaped").exists()
    assert not (out.parent.parent / "escaped").exists()
    assert (out / "leaderboards" / "all" / "board.md").exists()  # the run's own board


class _Capture(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        n = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(n))
        _Capture.seen.append(dict(self.headers))
        reply = {"choices": [{"index": i, "message": {"content": "I cannot help with that."},
                              "finish_reason": "stop"} for i in range(body.get("n", 1))]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a: object) -> None:
        pass


@pytest.fixture()
def http_server() -> object:
    srv = HTTPServer(("127.0.0.1", 0), _Capture)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    _Capture.seen = []
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_api_keys_never_travel_over_plain_http(http_server: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from evalkit.backends.base import OpenAIConfig
    from evalkit.backends.openai_compat import OpenAIBackend, parse_endpoint
    from evalkit.types import GenRequest

    monkeypatch.setenv("OPENAI_API_KEY", "sk-default-secret")
    monkeypatch.setenv("MY_KEY", "sk-named-secret")
    b = OpenAIBackend(OpenAIConfig(model=f"{http_server}#m"))
    dict(b.generate([GenRequest("hi")]))
    assert _Capture.seen and all("Authorization" not in h for h in _Capture.seen)
    with pytest.raises(BadInput, match="refusing to send") as info:
        OpenAIBackend(OpenAIConfig(model=f"{http_server}#m;key_env=MY_KEY"))
    assert "sk-named-secret" not in str(info.value)
    b = OpenAIBackend(OpenAIConfig(model=f"{http_server}#m;key_env=MY_KEY;insecure_http=true"))
    dict(b.generate([GenRequest("hi")]))
    assert _Capture.seen[-1].get("Authorization") == "Bearer sk-named-secret"
    assert parse_endpoint("https://api.example.org/v1#m").api_key() == "sk-default-secret"
    with pytest.raises(BadInput, match="not set"):
        parse_endpoint("https://api.example.org/v1#m;key_env=UNSET_VAR_X").api_key()


def test_credentials_in_a_judge_url_are_never_echoed_or_recorded(env: Env,
                                                                 tmp_path: Path) -> None:
    secret = "s3cr3t-pw"
    responses = write(tmp_path / "r.jsonl", json.dumps(
        {"id": "advbench-000", "response": "Sure, here is how."}) + "\n")
    res = call(["score", "--task", "safety:en:advbench", "--responses", str(responses),
                "-o", f"judge=openai:http://user:{secret}@127.0.0.1:9/v1#m"], tmp_path)
    assert res.code == 2 and secret not in res.err and secret not in res.out, res.err
    assert "***@" in res.err or "cannot reach" in res.err
    res = call(["score", "--task", "safety:en:advbench", "--responses", str(responses),
                "-o", f"judge=openai:ftp://user:{secret}@host/v1#m"], tmp_path)
    assert res.code == 2 and secret not in res.err


def test_lm_eval_function_tags_are_announced_and_recorded(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    pytest.importorskip("lm_eval")
    src = Path(__file__).resolve().parent.parent / "data" / "lm_eval_tasks"
    d = tmp_path / "tasks"
    d.mkdir()
    yaml = (src / "tiny_mc.yaml").read_text()
    yaml = yaml.replace("\ntask: ", "\nprocess_docs: !function utils.keep\ntask: ", 1)
    (d / "tiny_mc.yaml").write_text(yaml.replace("__DATA__", str(src)))
    (d / "utils.py").write_text("def keep(ds):\n    return ds\n")
    from evalkit.tasks.lm_eval_bridge import code_in_task_dirs, make_task

    found = code_in_task_dirs([str(d)])
    assert found and "utils.keep" in found[0]
    task = make_task(f"lm-eval:{_task_name(yaml)}@{d}")
    try:
        task._build()
    except Exception:  # noqa: BLE001 - building may fail offline; the announcement comes first
        pass
    err = capsys.readouterr().err
    assert "run Python code" in err and "utils.keep" in err


def _task_name(yaml: str) -> str:
    return next(x.split(":", 1)[1].strip() for x in yaml.splitlines()
                if x.startswith("task:"))


def _strings(n: int, seed: int = 0) -> list[str]:
    """Adversarial strings: control characters, lone surrogates, huge runs, mixed scripts,
    emoji, RTL marks, combining characters, punctuation storms, nested quotes, JSON-ish."""
    rng = random.Random(seed)
    alphabet = (["\x00", "\x1b", "\u200b", "\u202e", "\ufeff", "\ud800", "\udfff", "\u0301",
                 "😀", "\n", "\r", "\t", ".", "!", "?", "…", "«", "»", '"', "'", "{", "}",
                 "[", "]", "\\", "|", "<", ">", "&", "=", " ", "ø", "å", "æ", "Ø"]
                + list("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"))
    words = ["Jeg", "liker", "kaffe", "Hunden", "løper", "i", "parken", "Norsk", "er", "språk",
             "ikke", "og", "men", "f.eks.", "bl.a.", "kl.", "E.", "Ur", "NRK", "1990"]
    out = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))))
        elif kind == 1:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
                       + rng.choice([".", "!", "?", "", "…", "."]))
        elif kind == 2:
            out.append(rng.choice(".!?…") * rng.randint(1, 400))
        elif kind == 3:
            out.append(rng.choice(words) * rng.randint(1, 50))
        elif kind == 4:
            out.append("".join(chr(rng.randint(0x20, 0x2FFF)) for _ in range(rng.randint(0, 40))))
        else:
            out.append(json.dumps({"k": rng.choice(words)}) + rng.choice(["", "\ud83d", "\x00"]))
    return out


def test_fuzz_rule_and_readers_with_ten_thousand_strings(tmp_path: Path) -> None:
    """10,000 adversarial strings through the rule's text handling, the responses reader and
    the record readers: no exception other than a one-line BadInput, bounded time."""
    from evalkit.data import iter_jsonl
    from evalkit.oracles.base import safe_text
    from evalkit.oracles.rule import clean_text, split_sentences, truncate_text

    strings = _strings(10_000)
    t0 = time.perf_counter()
    for s in strings:
        c = clean_text(s)
        split_sentences(truncate_text(c))
        safe_text(s).encode("utf-8")
    lines = []
    for i, s in enumerate(strings[:3000]):
        lines.append(json.dumps({"id": str(i), "response": s}, ensure_ascii=bool(i % 2)))
        lines.append(s.replace("\n", " "))  # raw garbage lines between them
    f = tmp_path / "fuzz.jsonl"
    f.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
    seen = 0
    for start in range(0, len(lines), 500):  # chunks, so one bad line does not end the test
        chunk = tmp_path / f"c{start}.jsonl"
        chunk.write_text("\n".join(lines[start:start + 500]), encoding="utf-8",
                         errors="surrogatepass")
        try:
            seen += sum(1 for _ in iter_jsonl(chunk))
        except BadInput as exc:
            assert "\n" not in str(exc)
    assert time.perf_counter() - t0 < 60


@pytest.mark.parametrize("oracle", ["spacy-nob", "stanza-nob"])
def test_fuzz_oracles_never_raise(oracle: str) -> None:
    """Real parsers on adversarial strings (surrogates included): one Parse per string, no
    exception, linear work (long runs are broken, the length is capped)."""
    from evalkit.oracles.rule import RuleConfig, judge
    from evalkit.oracles.specs import load_oracle

    o = load_oracle(oracle, {})
    strings = _strings(10_000 if oracle == "spacy-nob" else 600, seed=1)
    strings += [".!?" * 2000, "a" * 20_000, "\ud800" * 50, ""]
    t0 = time.perf_counter()
    parses = o.parse(strings[:400])
    assert len(parses) == 400
    verdicts = judge(o, strings, RuleConfig())
    assert len(verdicts) == len(strings)
    assert all(-1.0 <= v.reward <= 1.0 for v in verdicts)
    assert time.perf_counter() - t0 < 110
