"""A minimal Chrome DevTools Protocol client (stdlib only) for the browser tests (board and
`evalkit view` pages).

Starts headless Chromium (Debian's `chromium`) on a private profile with
``--remote-debugging-port=0``, reads the port it picked from ``DevToolsActivePort``, and talks
to the page over a hand-rolled RFC 6455 WebSocket on 127.0.0.1. No browser download, no extra
Python package. Holds no tests itself; `save_artifact` copies screenshots to
``$EVALKIT_ARTIFACTS`` when set (CI keeps them).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def chromium_binary() -> str | None:
    """Path of a Chromium executable, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


class _WebSocket:
    def __init__(self, host: str, port: int, path: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("websocket handshake closed")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(head.decode(errors="replace"))

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def send(self, text: str) -> None:
        data = text.encode()
        head = bytearray([0x81])
        n = len(data)
        if n < 126:
            head.append(0x80 | n)
        elif n < 1 << 16:
            head.append(0x80 | 126)
            head += struct.pack(">H", n)
        else:
            head.append(0x80 | 127)
            head += struct.pack(">Q", n)
        mask = os.urandom(4)
        self.sock.sendall(bytes(head) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self) -> str:
        parts: list[bytes] = []
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            if opcode == 0x9:  # ping: answer with a masked pong
                mask = os.urandom(4)
                self.sock.sendall(bytes([0x8A, 0x80 | n]) + mask
                                  + bytes(x ^ mask[i % 4] for i, x in enumerate(payload)))
                continue
            parts.append(payload)
            if b0 & 0x80:
                return b"".join(parts).decode()

    def close(self) -> None:
        self.sock.close()


class Chromium:
    """Headless Chromium driven over CDP: open a page, evaluate JS, click, screenshot."""

    def __init__(self, exe: str, profile: Path, width: int = 1280, height: int = 900) -> None:
        self.exe, self.profile, self.size = exe, Path(profile), (width, height)
        self.requested: list[str] = []
        self.errors: list[str] = []  # uncaught JS exceptions in the page
        self._id = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        self.profile.mkdir(parents=True, exist_ok=True)
        # a profile used before keeps its old port file: never read a dead browser's port
        (self.profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [self.exe, "--headless=new", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", "--no-first-run", "--remote-debugging-port=0",
             "--remote-debugging-address=127.0.0.1", f"--user-data-dir={self.profile}",
             f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (port_file.exists() and port_file.read_text().count("\n") >= 1):
            if time.time() > deadline or self.proc.poll() is not None:
                self.__exit__()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        try:  # whatever fails from here on, the browser this object started is stopped
            port = int(port_file.read_text().splitlines()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
                targets = json.load(r)
            page = next(t for t in targets if t.get("type") == "page")
            path = page["webSocketDebuggerUrl"].split(f"127.0.0.1:{port}", 1)[1]
            self.ws = _WebSocket("127.0.0.1", port, path)
            self.call("Page.enable")
            self.call("Network.enable")
            self.call("Runtime.enable")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            ws.close()
        self.proc.terminate()  # only the browser this object started
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        if msg.get("method") == "Network.requestWillBeSent":
            self.requested.append(msg["params"]["request"]["url"])
        elif msg.get("method") == "Runtime.exceptionThrown":
            d = msg["params"]["exceptionDetails"]
            self.errors.append(str(d.get("exception", {}).get("description") or d.get("text")))
        self._events.append(msg)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one CDP command and wait for its result (events are recorded meanwhile)."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._dispatch(msg)

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (a change of #fragment only: no wait)."""
        self._events.clear()
        res = self.call("Page.navigate", url=url)
        if "loaderId" not in res:  # same document, another #fragment: no load event comes
            return
        deadline = time.time() + 60
        while not any(e.get("method") == "Page.loadEventFired" for e in self._events):
            if time.time() > deadline:
                raise TimeoutError(f"{url} did not load")
            self._dispatch(json.loads(self.ws.recv()))

    def eval(self, expr: str) -> Any:
        """Evaluate a JS expression in the page; returns its JSON value."""
        res = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"JS error in {expr!r}: {res['exceptionDetails']}")
        return res["result"].get("value")

    def click(self, selector: str) -> None:
        """A real left click (mouse events) at the centre of the element."""
        x, y = self.eval(f"(() => {{const r = document.querySelector({json.dumps(selector)})"
                         ".getBoundingClientRect(); return [r.x + r.width / 2, "
                         "r.y + r.height / 2];})()")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def screenshot(self, path: Path) -> Path:
        """Save a PNG of the full page."""
        res = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        Path(path).write_bytes(base64.b64decode(res["data"]))
        return Path(path)

    def set_viewport(self, width: int, height: int) -> None:
        """Emulate a window of `width` × `height` CSS pixels."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)

    def type(self, selector: str, text: str) -> None:
        """Focus an input and type `text` as keyboard input (fires `input` events)."""
        self.eval(f"(() => {{const e = document.querySelector({json.dumps(selector)}); "
                  "e.focus(); e.select && e.select();})()")
        self.call("Input.insertText", text=text)

    def select(self, selector: str, value: str) -> None:
        """Choose `value` in a <select> and fire its change event, as a user's pick does."""
        self.eval(f"(() => {{const e = document.querySelector({json.dumps(selector)}); "
                  f"e.value = {json.dumps(value)}; "
                  "e.dispatchEvent(new Event('change', {bubbles: true}));})()")

    def wait(self, expr: str, timeout: float = 10.0) -> Any:
        """Poll a JS expression until it is truthy; returns its value."""
        deadline = time.time() + timeout
        while True:
            v = self.eval(expr)
            if v:
                return v
            if time.time() > deadline:
                raise TimeoutError(f"{expr!r} stayed falsy for {timeout} s")
            time.sleep(0.05)


def save_artifact(path: Path) -> Path:
    """Copy a screenshot (or any file) to ``$EVALKIT_ARTIFACTS`` when that is set."""
    dest = os.environ.get("EVALKIT_ARTIFACTS")
    if dest:
        Path(dest).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, Path(dest) / Path(path).name)
    return Path(path)
