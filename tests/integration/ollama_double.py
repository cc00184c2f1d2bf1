"""Test double for an Ollama server (Ollama cannot be installed here).

Serves the parts of Ollama's HTTP API that LiteLLM's `ollama_chat/` provider uses, with the same
shapes and status codes as Ollama (https://github.com/ollama/ollama/blob/main/docs/api.md):
POST /api/chat (streaming NDJSON or a single JSON object), POST /api/embed (`input` a string or a
list; one vector per input, `prompt_eval_count`), POST /api/show, GET /api/tags, GET /api/version. A model that is not pulled answers 404 like Ollama does. Each double records
the chat requests it received, so tests can see where LiteLLM routed them. Like Ollama (Go's
net/http) it speaks HTTP/1.1 with keep-alive connections, and streams with chunked transfer encoding:
LiteLLM keeps its connections to Ollama open, and a double that closed them would make every
request pay a connection setup that a real deployment does not. `stop()` closes open connections too,
as a stopped Ollama would.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OLLAMA_VERSION = "0.12.6"


class _Server(ThreadingHTTPServer):
    # A listen backlog for many clients at once (socketserver's default of 5 drops connections under
    # load, and each dropped SYN costs the client a 1 s retransmission: noise in every benchmark).
    request_queue_size = 256
    daemon_threads = True

    def __init__(self, *args, **kwargs):
        self.connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):
        with self._connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        with self._connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # A client (LiteLLM, HAProxy's checks) closing its connection mid-request is normal, as for Ollama.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self.connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class OllamaDouble:
    def __init__(self, host_name: str, models: list[str], stream_chunks: int = 1, chunk_delay: float = 0.0,
                 slots: int | None = None, service_seconds: float = 0.0, port: int = 0, address: str = "127.0.0.1"):
        self.host_name = host_name
        self.models = list(models)
        # Like a GPU: `slots` requests of a model at once (OLLAMA_NUM_PARALLEL), each taking `service_seconds`;
        # the rest wait in the host's own queue, as Ollama's scheduler queues them. None: no limit.
        self.service_seconds = service_seconds
        self._slots = {m: threading.BoundedSemaphore(slots) for m in self.models} if slots else {}
        self.in_service: dict[str, int] = {}
        self.most_in_service: dict[str, int] = {}
        # A streamed answer comes in `stream_chunks` pieces, `chunk_delay` seconds apart (like a GPU).
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.chat_requests: list[dict] = []
        self.embed_requests: list[dict] = []
        self._lock = threading.Lock()
        self._server = _Server((address, port), self._handler())  # port: a restarted host's own
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> "OllamaDouble":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()

    def _count(self, model: str, step: int) -> None:
        with self._lock:
            self.in_service[model] = self.in_service.get(model, 0) + step
            self.most_in_service[model] = max(self.most_in_service.get(model, 0), self.in_service[model])

    def chats_for(self, model: str) -> list[dict]:
        with self._lock:
            return [r for r in self.chat_requests if r.get("model") == model]

    def _tags(self) -> dict:
        return {"models": [
            {"name": m, "model": m, "modified_at": "2026-11-01T00:00:00Z", "size": 397821319,
             "digest": hashlib.sha256(m.encode()).hexdigest(),
             "details": {"format": "gguf", "family": "qwen2", "parameter_size": "494.03M",
                         "quantization_level": "Q4_K_M"}}
            for m in self.models
        ]}

    def _handler(self):
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Ollama
            # Go sets TCP_NODELAY on every connection. Without it the body, written after the headers,
            # waits for the client's delayed ACK (40 ms) on a kept connection.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep test output quiet
                pass

            def _send(self, status: int, body) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def _body(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _embed(self, body: dict, model) -> None:
                with double._lock:
                    double.embed_requests.append(body)
                if model not in double.models:
                    return self._send(404, {"error": f'model "{model}" not found, try pulling it first'})
                inputs = body.get("input")
                inputs = [inputs] if isinstance(inputs, str) else inputs
                if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
                    return self._send(400, {"error": "invalid input type"})
                # A deterministic unit-length vector per input (the real one is the model's).
                vectors = []
                for text in inputs:
                    digest = hashlib.sha256(text.encode()).digest()[:8]
                    raw = [b - 127.5 for b in digest]
                    norm = sum(v * v for v in raw) ** 0.5
                    vectors.append([v / norm for v in raw])
                self._send(200, {"model": model, "embeddings": vectors, "total_duration": 1000000,
                                 "load_duration": 1000, "prompt_eval_count": sum(len(t.split()) for t in inputs)})

            def do_GET(self):
                if self.path == "/api/version":
                    self._send(200, {"version": OLLAMA_VERSION})
                elif self.path == "/api/tags":
                    self._send(200, double._tags())
                elif self.path == "/":  # Ollama answers its root in plain text
                    data = b"Ollama is running"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._send(404, {"error": "404 page not found"})

            def do_POST(self):
                body = self._body()
                model = body.get("model") or body.get("name")
                if self.path == "/api/show":
                    if model not in double.models:
                        return self._send(404, {"error": f"model '{model}' not found"})
                    return self._send(200, {
                        "modelfile": "", "parameters": "", "template": "{{ .Prompt }}",
                        "details": next(m["details"] for m in double._tags()["models"] if m["name"] == model),
                        "model_info": {"general.architecture": "qwen2", "qwen2.context_length": 32768},
                        "capabilities": ["completion"],
                    })
                if self.path == "/api/embed":
                    return self._embed(body, model)
                if self.path != "/api/chat":
                    return self._send(404, {"error": "404 page not found"})
                with double._lock:
                    double.chat_requests.append(body)
                if model not in double.models:
                    return self._send(404, {"error": f'model "{model}" not found, try pulling it first'})
                slot = double._slots.get(model)
                if slot is not None:
                    with slot:
                        double._count(model, +1)
                        try:
                            time.sleep(double.service_seconds)
                        finally:
                            double._count(model, -1)
                elif double.service_seconds:
                    time.sleep(double.service_seconds)
                text = f"reply from {double.host_name} ({model})"
                now = datetime.now(timezone.utc).isoformat()
                final = {"model": model, "created_at": now, "message": {"role": "assistant", "content": ""},
                         "done": True, "done_reason": "stop", "total_duration": 1000000,
                         "load_duration": 1000, "prompt_eval_count": 7, "prompt_eval_duration": 1000,
                         "eval_count": 5, "eval_duration": 1000}
                if body.get("stream", True):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/x-ndjson")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for i in range(double.stream_chunks):
                        piece = text if i == 0 else f" [{i}]"
                        chunk = {"model": model, "created_at": now,
                                 "message": {"role": "assistant", "content": piece}, "done": False}
                        self._chunk((json.dumps(chunk) + "\n").encode())
                        if double.chunk_delay:
                            time.sleep(double.chunk_delay)
                    self._chunk((json.dumps(final) + "\n").encode())
                    self._chunk(b"")
                    return
                final["message"]["content"] = text
                self._send(200, final)

        return Handler
