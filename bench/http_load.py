"""The load generator the gateway benchmarks share: asyncio + httpx with keep-alive connections,
`concurrency` workers sending `requests` chat requests, with distinct prompts (no cache hits) unless told."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path


async def _load(url: str, key: str, requests: int, concurrency: int, model: str, distinct: bool = True,
                path: str = "/v1/chat/completions") -> tuple[float, float, float]:
    import httpx

    latencies: list[float] = []
    queue: asyncio.Queue = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def worker(client):
        while not queue.empty():
            i = queue.get_nowait()
            started = time.perf_counter()
            content = f"bench {i} {uuid.uuid4()}" if distinct else "the same question every time"
            body = {"model": model, "messages": [{"role": "user", "content": content}]}
            if path == "/api/chat":
                body["stream"] = False  # Ollama's own API (the floor: straight to the backend)
            response = await client.post(path, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
            latencies.append((time.perf_counter() - started) * 1000)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60,
                                 limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return requests / elapsed, latencies[len(latencies) // 2], latencies[max(0, int(len(latencies) * 0.95) - 1)]


def load(url: str, key: str, requests: int, concurrency: int, model: str = "qwen-small", distinct: bool = True,
         path: str = "/v1/chat/completions") -> tuple[float, float, float]:
    """(requests per second, p50 ms, p95 ms); raises on any failed request. `distinct=False` sends one
    prompt every time (cache hits); `path="/api/chat"` speaks Ollama's API to the backend itself."""
    return asyncio.run(_load(url, key, requests, concurrency, model, distinct, path))


def spread(values: list[float]) -> str:
    """min median max, for the min/median/max the benchmarks report."""
    return f"{min(values):8.2f} {statistics.median(values):8.2f} {max(values):8.2f}"


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (an entrypoint script and the LiteLLM it runs), from /proc."""
    tree, index = [pid], 0
    while index < len(tree):
        for task in Path(f"/proc/{tree[index]}/task").iterdir():
            children = (task / "children").read_text().split()
            tree.extend(int(child) for child in children)
        index += 1
    return tree
