"""Backend ``openai``: an OpenAI-compatible chat-completions endpoint, standard library only.

The model is given as ``<base_url>#<model>`` (``http://127.0.0.1:8000/v1#my-judge``): requests
go to ``<base_url>/chat/completions`` with the prompt text as one user message, so the server
applies its own chat template (render prompts with ``--chat-template off``). vLLM's
``vllm serve``, llama.cpp's server, TGI and hosted APIs speak this protocol. An API key is read
from ``$EVALKIT_OPENAI_API_KEY`` or ``$OPENAI_API_KEY`` when set (local servers need none), or
from the variable the spec names: ``<base_url>#<model>;key_env=MY_KEY``.

Credentials never leak: a key goes only to ``https`` URLs (plain ``http`` needs the explicit
opt-in ``;insecure_http=true``, and the default variables are never sent over ``http``); user
and password inside a URL are stripped from every message, record and cache key
(:func:`redact_url`); the key itself is never echoed or recorded.

Requests run concurrently (``batch_size`` threads, default 8) and stream back as they finish.
Transient failures (HTTP 429/5xx, timeouts) are retried with backoff; anything else is an
`EvalkitError` naming the endpoint and the server's message. Chat completions have no prompt
log-probabilities, so ``loglikelihood`` is refused with a clear error.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from evalkit.backends.base import OpenAIConfig, truncate_at_stop
from evalkit.errors import BadInput, EvalkitError
from evalkit.types import Generation, GenRequest, LoglikRequest, LoglikResult

RETRIES = 3
TIMEOUT_S = 120.0
MAX_STOP = 4  # the OpenAI API accepts at most 4 stop strings; the rest are applied locally


def redact_url(text: str) -> str:
    """`text` with any ``user:password@`` of a URL replaced by ``***@``."""
    import re

    return re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@#]+@", r"\1***@", text)


@dataclass(frozen=True)
class Endpoint:
    """A parsed ``<base_url>#<model>[;key_env=VAR][;insecure_http=true]`` spec."""

    base_url: str
    model: str
    key_env: str | None = None
    insecure_http: bool = False

    @property
    def public(self) -> str:
        """The spec as it may be shown and recorded (no credentials)."""
        return f"{redact_url(self.base_url)}#{self.model}"

    def api_key(self) -> str | None:
        """The key to send, or None; refuses to send a named key over plain http."""
        https = self.base_url.lower().startswith("https://")
        if self.key_env:
            key = os.environ.get(self.key_env)
            if not key:
                raise BadInput(f"openai endpoint {self.public}: ${self.key_env} (named by "
                               "key_env) is not set; export it or drop key_env")
            if not https and not self.insecure_http:
                raise BadInput(f"openai endpoint {self.public}: refusing to send ${self.key_env} "
                               "over plain http; use an https URL, or add ;insecure_http=true "
                               "if this network is trusted")
            return key
        if not https:  # default variables are never sent in the clear
            return None
        return os.environ.get("EVALKIT_OPENAI_API_KEY") or os.environ.get("OPENAI_API_KEY")


def parse_endpoint(spec: str) -> Endpoint:
    """Parse an endpoint spec; one-line errors that never echo credentials."""
    head, *opts = spec.split(";")
    base, sep, model = head.partition("#")
    shown = redact_url(head)
    if not sep or not model.strip() or not base.startswith(("http://", "https://")):
        raise BadInput(f"openai backend model {shown!r} must look like <base_url>#<model>, e.g. "
                       "http://127.0.0.1:8000/v1#my-model")
    key_env, insecure = None, False
    for o in opts:
        k, _, v = o.partition("=")
        k, v = k.strip(), v.strip()
        if k == "key_env" and v.replace("_", "").isalnum():
            key_env = v
        elif k == "insecure_http" and v.lower() in ("true", "1", "yes", "false", "0", "no"):
            insecure = v.lower() in ("true", "1", "yes")
        else:
            raise BadInput(f"openai endpoint {shown!r}: unknown or malformed option {k!r}; "
                           "valid: key_env=VARIABLE, insecure_http=true")
    return Endpoint(base.rstrip("/"), model.strip(), key_env, insecure)


def split_model(spec: str) -> tuple[str, str]:
    """``<base_url>#<model>`` → (base_url without trailing slash, model)."""
    ep = parse_endpoint(spec)
    return ep.base_url, ep.model


class OpenAIBackend:
    """Chat-completions client; one HTTP request per `GenRequest` (``n`` choices each)."""

    name = "openai"
    config_class = OpenAIConfig

    def __init__(self, config: OpenAIConfig) -> None:
        if config.adapters:
            raise BadInput("the openai backend cannot load LoRA adapters; serve the adapter "
                           "on the endpoint and name it as the model")
        self.endpoint = parse_endpoint(config.model)
        self.base_url, self.model = self.endpoint.base_url, self.endpoint.model
        self.concurrency = max(1, config.batch_size or 8)
        self.seed = config.seed
        self._key = self.endpoint.api_key()

    def _body(self, req: GenRequest) -> dict[str, Any]:
        p = req.params
        body: dict[str, Any] = {
            "model": self.model, "messages": [{"role": "user", "content": req.prompt}],
            "max_tokens": p.max_new_tokens, "temperature": max(0.0, p.temperature),
            "top_p": p.top_p, "n": p.n,
        }
        if p.stop:
            body["stop"] = list(p.stop[:MAX_STOP])
        seed = p.seed if p.seed is not None else self.seed
        if seed is not None:
            body["seed"] = seed
        if p.repetition_penalty != 1.0:  # vLLM-server extension; others ignore unknown keys
            body["repetition_penalty"] = p.repetition_penalty
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        shown = redact_url(url)
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        delay = 0.5
        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                msg = exc.read().decode("utf-8", "replace")[:200]
                if exc.code in (429, 500, 502, 503, 504) and attempt < RETRIES:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise EvalkitError(f"openai endpoint {shown} answered HTTP {exc.code}: {msg}; "
                                   "check the model name and the server") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt < RETRIES and isinstance(exc, TimeoutError):
                    time.sleep(delay)
                    delay *= 2
                    continue
                reason = getattr(exc, "reason", exc)
                raise EvalkitError(f"cannot reach openai endpoint {shown} "
                                   f"({redact_url(str(reason))}); start the "
                                   "server or fix the base URL") from None
            except json.JSONDecodeError:
                raise EvalkitError(f"openai endpoint {shown} returned non-JSON; is it an "
                                   "OpenAI-compatible server?") from None
        raise EvalkitError(f"openai endpoint {shown}: retries exhausted")  # pragma: no cover

    def _one(self, req: GenRequest) -> Generation:
        resp = self._post(self._body(req))
        try:
            choices = sorted(resp["choices"], key=lambda c: c.get("index", 0))
            texts = [c["message"].get("content") or "" for c in choices]
        except (KeyError, TypeError, AttributeError):
            raise EvalkitError(f"openai endpoint {self.endpoint.public} returned no "
                               "choices/message "
                               f"content: {json.dumps(resp)[:160]}") from None
        out, reasons = [], []
        for c, t in zip(choices, texts):
            t, stopped = truncate_at_stop(t, req.params.stop)
            out.append(t)
            reasons.append("stop" if stopped or c.get("finish_reason") == "stop" else "length")
        used = (resp.get("usage") or {}).get("completion_tokens")
        ntok = (int(used) // max(1, len(out)),) * len(out) if used is not None else ()
        return Generation(tuple(out), ntok, tuple(reasons))

    def generate(self, requests: Sequence[GenRequest]) -> Iterator[tuple[int, Generation]]:
        """Yield generations as the endpoint answers (`batch_size` requests in flight)."""
        if not requests:
            return
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            futures = {pool.submit(self._one, r): i for i, r in enumerate(requests)}
            try:
                for fut in as_completed(futures):
                    yield futures[fut], fut.result()
            finally:
                for f in futures:
                    f.cancel()

    def loglikelihood(self, requests: Sequence[LoglikRequest]
                      ) -> Iterator[tuple[int, LoglikResult]]:
        """Not available over chat completions."""
        raise BadInput("the openai backend serves chat completions only; log-likelihood "
                       "tasks (ppl, scala, bl2mp) need --backend hf or vllm")
        yield  # pragma: no cover  (makes this a generator, like the other backends)

    def close(self) -> None:
        """Nothing held between requests."""
