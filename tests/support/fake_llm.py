"""A stand-in for an external OpenAI-compatible chat-completions service.

No such service runs on the test machine, so this is a small real HTTP
server (``http.server`` in a thread, on a free loopback port) that speaks
the part of the protocol the bots use: ``POST /v1/chat/completions`` with
``stream`` true (server-sent events, ``data: [DONE]`` at the end) or false.
It checks the bearer key and the model the way the real services do
(including their habit of quoting a wrong key back in the error), answers
with a canned text derived from the prompt, and can be told to stall, to
trickle, or to fail midway by dropping the connection or sending an error
event.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

KEY = "sk-fake-0123456789abcdef-not-a-real-key"
MODEL = "fake-poet-1"


def canned_answer(prompt: str) -> str:
    """What the stand-in answers to ``prompt``: long enough to need several deltas."""
    lines = " ".join(f"Line {n} sings of {prompt}." for n in range(1, 7))
    return f"A short poem about {prompt}. {lines}"


def pieces(answer: str) -> list[str]:
    """The answer as the stand-in streams it: one word (with its space) per event."""
    return re.findall(r"\S+\s*", answer)


@dataclass
class FakeLlm:
    key: str | None = KEY
    model: str = MODEL
    # Knobs a test may turn; read by the server thread at each request.
    stall: float = 0.0  # seconds before the answer starts
    delay: float = 0.0  # seconds between streamed pieces
    fail_after: int | None = None  # pieces sent before a streamed answer fails
    fail_with: str = "drop"  # "drop" the connection, or send an "error" event
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> Self:
        fake = self

        class Handler(_Handler):
            llm = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _Handler(BaseHTTPRequestHandler):
    llm: FakeLlm
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet

    def handle(self) -> None:
        # A client that gave up (a timeout test) is nothing to report.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def do_POST(self) -> None:
        llm = self.llm
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        llm.requests.append(body)
        llm.headers.append(dict(self.headers.items()))

        if self.path != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"No route {self.path}"}})
            return
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if llm.key is not None and given != llm.key:
            # Like the real services: the wrong key is quoted back.
            message = f"Incorrect API key provided: {given}"
            self._json(401, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        if body.get("model") != llm.model:
            message = f"The model '{body.get('model')}' does not exist"
            self._json(404, {"error": {"message": message, "type": "invalid_request_error"}})
            return
        messages = body.get("messages") or [{}]
        if messages[-1].get("role") != "user":
            self._json(400, {"error": {"message": "The last message must be the user's"}})
            return

        time.sleep(llm.stall)
        answer = canned_answer(str(messages[-1].get("content", "")))
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": answer}}
            self._json(200, {"object": "chat.completion", "model": llm.model, "choices": [choice]})
            return
        self._stream(pieces(answer))

    def _stream(self, texts: list[str]) -> None:
        llm = self.llm
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for number, text in enumerate(texts):
            if number == llm.fail_after:
                if llm.fail_with == "error":
                    self._event({"error": {"message": "The model crashed", "type": "server_error"}})
                    self._chunk(b"")
                # Either way the answer ends here, without [DONE].
                self.close_connection = True
                return
            time.sleep(llm.delay)
            self._event({"choices": [{"index": 0, "delta": {"content": text}}]})
        self._event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _event(self, payload: dict[str, Any]) -> None:
        self._chunk(f"data: {json.dumps(payload)}\n\n".encode())

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
