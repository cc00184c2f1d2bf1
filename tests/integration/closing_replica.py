"""Test double (fault injection) for a LiteLLM replica closing a kept-alive connection at the moment
the load balancer sends a request on it. Real LiteLLM (uvicorn) closes idle connections when it stops
or when its keep-alive timeout runs out; that race cannot be hit on purpose with the real proxy, so
this stand-in makes it happen every time: on each connection it answers the first request (a small
JSON 200, as LiteLLM would, and 200 on /health/readiness) and closes the connection without a word
when the next request has arrived. With `closing=False` it answers every request.
"""

from __future__ import annotations

import json
import socket
import threading


class ClosingReplica:
    def __init__(self, address: str, port: int, name: str, closing: bool = True):
        self.name = name
        self.closing = closing
        self.closed_on_request = 0
        self.answered = 0
        self._lock = threading.Lock()
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((address, port))
        self._socket.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._socket.close()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        try:
            self._exchange(connection)
        except OSError:  # health checks and HAProxy's purges reset connections
            pass

    def _exchange(self, connection: socket.socket) -> None:
        buffered, served = b"", 0
        with connection:
            while True:
                head, separator, rest = buffered.partition(b"\r\n\r\n")
                if not separator:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                    continue
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                if len(rest) < length:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffered += data
                    continue
                buffered = rest[length:]
                served += 1
                if self.closing and served >= 2:
                    with self._lock:
                        self.closed_on_request += 1
                    return  # closes without an answer
                body = json.dumps({"replica": self.name}).encode()
                connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                   b"content-length: %d\r\n\r\n%s" % (len(body), body))
                with self._lock:
                    self.answered += 1
