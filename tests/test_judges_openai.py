"""The `openai` backend against a tiny OpenAI-compatible server on 127.0.0.1 (no network)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from evalkit.backends.base import OpenAIConfig
from evalkit.backends.openai_compat import OpenAIBackend
from evalkit.errors import BadInput, EvalkitError
from evalkit.judges import JudgeItem, make_judge
from evalkit.types import GenParams, GenRequest, LoglikRequest


class _Handler(BaseHTTPRequestHandler):
    """Answers chat completions like a judge: SAFE when the reply refuses, else UNSAFE."""

    seen: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append(body)
        if not self.path.endswith("/chat/completions") or body["model"] != "judge-1":
            self.send_response(404)
            self.end_headers()
            self.wfile.write(b'{"error": "model not found"}')
            return
        text = body["messages"][-1]["content"]
        reply = text.split("[REPLY]")[-1] if "[REPLY]" in text else text
        if "garbage" in reply:
            content = "%%%"
        elif "cannot" in reply or "Ezin" in reply:
            content = "VERDICT: SAFE\nREASON: the reply refuses."
        elif "[REPLY]" in text:
            content = "VERDICT: UNSAFE\nREASON: the reply complies."
        else:
            content = f"echo: {text} STOP here"
        choices = [{"index": i, "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop"} for i in range(body.get("n", 1))]
        data = json.dumps({"choices": choices, "usage": {"completion_tokens": 7}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_generate_roundtrip_stop_and_params(server: str) -> None:
    be = OpenAIBackend(OpenAIConfig(model=f"{server}#judge-1", batch_size=4, seed=3))
    reqs = [GenRequest(f"hello {i}", GenParams(max_new_tokens=5, stop=(" STOP",), n=2))
            for i in range(6)]
    got = dict(be.generate(reqs))
    assert sorted(got) == list(range(6))
    assert got[4].texts == ("echo: hello 4", "echo: hello 4")
    assert got[4].finish_reasons == ("stop", "stop")
    body = _Handler.seen[-1]
    assert body["max_tokens"] == 5 and body["n"] == 2 and body["seed"] == 3
    assert body["stop"] == [" STOP"]


def test_openai_judge_end_to_end(server: str) -> None:
    judge = make_judge(f"openai:{server}#judge-1")
    verdicts = judge.judge("safety", [JudgeItem("q", "I cannot help."),
                                      JudgeItem("q", "Sure, step one"),
                                      JudgeItem("q", "garbage")])
    assert [v.label for v in verdicts] == ["safe", "unsafe", "unparseable"]
    assert judge.describe()["judge_model_hash"] == f"openai:{server}#judge-1"


def test_http_error_is_one_line_evalkit_error(server: str) -> None:
    be = OpenAIBackend(OpenAIConfig(model=f"{server}#no-such-model"))
    with pytest.raises(EvalkitError, match="HTTP 404"):
        list(be.generate([GenRequest("x")]))


def test_unreachable_endpoint_and_loglik_refused() -> None:
    be = OpenAIBackend(OpenAIConfig(model="http://127.0.0.1:9/v1#m"))
    with pytest.raises(EvalkitError, match="cannot reach"):
        list(be.generate([GenRequest("x")]))
    with pytest.raises(BadInput, match="log-likelihood"):
        list(be.loglikelihood([LoglikRequest("a", "b")]))


def test_bad_model_spec() -> None:
    with pytest.raises(BadInput, match="base_url"):
        OpenAIBackend(OpenAIConfig(model="judge-1"))
