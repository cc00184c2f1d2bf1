"""The Ollama test double speaks HTTP as Ollama (Go's net/http) does: connections kept open between
requests, streamed answers in chunked transfer encoding, and a stopped server closes what is open.
LiteLLM keeps its connections to Ollama, so a double that closed them would add a connection setup per
request to every gateway figure."""

from __future__ import annotations

import http.client
import json

from ollama_double import OllamaDouble


def test_connections_are_kept_open_and_streams_are_chunked():
    double = OllamaDouble("ollama-dev", ["qwen2.5:0.5b"], stream_chunks=3).start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", double.port, timeout=5)
        body = {"model": "qwen2.5:0.5b", "messages": [{"role": "user", "content": "hi"}]}
        connection.request("POST", "/api/chat", json.dumps({**body, "stream": False}))
        answer = connection.getresponse()
        assert answer.version == 11 and answer.status == 200
        assert json.loads(answer.read())["done"] is True
        first_socket = connection.sock
        assert first_socket is not None  # the server did not close it

        connection.request("POST", "/api/chat", json.dumps(body))  # streamed, on the same connection
        stream = connection.getresponse()
        assert connection.sock is first_socket
        assert stream.getheader("Transfer-Encoding") == "chunked"
        lines = [json.loads(line) for line in stream.read().decode().splitlines()]
        assert [line["done"] for line in lines] == [False, False, False, True]
        assert "".join(line["message"]["content"] for line in lines).startswith("reply from ollama-dev")

        connection.request("GET", "/api/version")  # the connection survived the stream too
        assert json.loads(connection.getresponse().read())["version"]
    finally:
        double.stop()
    # A stopped double closes the connection it kept, as a stopped Ollama would.
    assert first_socket.recv(1) == b""
