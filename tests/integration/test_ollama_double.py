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


def test_the_root_answers_plain_text_and_show_and_embed_answer_for_the_model_asked():
    """As Ollama's API docs and server: `GET /` is text, `/api/show` of an unpulled model is 404, `/api/embed`
    gives one vector per input (a string counts as one)."""
    import httpx

    double = OllamaDouble("h", ["a:1b", "b:1b"]).start()
    try:
        root = httpx.get(f"http://127.0.0.1:{double.port}/", timeout=5)
        assert root.text == "Ollama is running" and root.headers["content-type"].startswith("text/plain")
        assert httpx.post(f"http://127.0.0.1:{double.port}/api/show", json={"model": "b:1b"}, timeout=5).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{double.port}/api/show", json={"model": "c:1b"}, timeout=5).status_code == 404
        one = httpx.post(f"http://127.0.0.1:{double.port}/api/embed", json={"model": "a:1b", "input": "x"}, timeout=5).json()
        two = httpx.post(f"http://127.0.0.1:{double.port}/api/embed", json={"model": "a:1b", "input": ["x", "y"]}, timeout=5).json()
        assert len(one["embeddings"]) == 1 and len(two["embeddings"]) == 2 and one["embeddings"][0] == two["embeddings"][0]
        missing = httpx.post(f"http://127.0.0.1:{double.port}/api/embed", json={"model": "c:1b", "input": "x"}, timeout=5)
        assert missing.status_code == 404 and "not found" in missing.json()["error"]
    finally:
        double.stop()


def test_with_slots_a_host_serves_that_many_at_once_and_queues_the_rest():
    import concurrent.futures
    import time

    double = OllamaDouble("h", ["a:1b"], slots=2, service_seconds=0.3).start()
    try:
        body = json.dumps({"model": "a:1b", "stream": False, "messages": [{"role": "user", "content": "x"}]})

        def one():
            connection = http.client.HTTPConnection("127.0.0.1", double.port, timeout=10)
            connection.request("POST", "/api/chat", body)
            return connection.getresponse().status

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            assert list(pool.map(lambda _: one(), range(6))) == [200] * 6
        assert time.monotonic() - started >= 0.85  # 6 requests, 2 at a time, 0.3 s each: 3 rounds
        assert double.most_in_service["a:1b"] == 2
    finally:
        double.stop()
