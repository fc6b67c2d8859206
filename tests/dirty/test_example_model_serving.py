"""examples/model_serving: a model per GPU token, batched embeddings, SSE tokens, stash
sessions, through the example's own configuration."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from conftest import DirtyServer, sse_events
from harness import REPO

MODEL = "model_app:TinyModel"


@pytest.fixture(scope="module")
def example() -> Iterator[DirtyServer]:
    server = DirtyServer(["-c", "gunicorn.conf.py", "-w", "1", "--no-control-socket",
                          "web_app:app"], cwd=REPO / "examples" / "model_serving",
                         env={"MODEL_LOAD_SECONDS": "0.2"})
    with server:
        server.booted(2, timeout=30)
        yield server


def test_each_model_worker_holds_its_own_gpu(example: DirtyServer) -> None:
    with example.client() as client:
        infos = {i["pid"]: i for i in (client.execute(MODEL, "info") for _ in range(4))}
    assert len(infos) == 2
    assert sorted(i["gpu"] for i in infos.values()) == ["0", "1"]
    assert all(i["gpu"] == i["cuda_visible_devices"] for i in infos.values())


def test_concurrent_embeddings_each_get_their_own_vector(example: DirtyServer) -> None:
    texts = [f"text number {i}" for i in range(32)]

    async def run() -> list[list[float]]:
        async with httpx.AsyncClient(base_url=example.url, timeout=10) as http:
            replies = await asyncio.gather(*(http.post("/embed", json={"text": t})
                                             for t in texts))
        assert all(r.status_code == 200 for r in replies)
        return [r.json()["vector"] for r in replies]

    vectors = asyncio.run(run())
    with example.client() as client:
        assert vectors == [client.execute(MODEL, "embed", t) for t in texts]
        infos = {i["pid"]: i for i in (client.execute(MODEL, "info") for _ in range(4))}
    assert sum(i["embedded"] for i in infos.values()) >= len(texts)
    assert httpx.post(f"{example.url}/embed", json={"text": ""}, timeout=10).status_code == 422


def test_chat_streams_tokens_and_keeps_the_session(example: DirtyServer) -> None:
    answers = []
    for prompt in ("the model", "and then"):
        params = {"session": "s1", "prompt": prompt, "max_tokens": "6"}
        with httpx.stream("GET", f"{example.url}/chat", params=params, timeout=10) as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            events = list(sse_events(resp.iter_lines()))
        tokens = [data for event, data in events if event == "token"]
        assert events[-1] == ("done", {"tokens": 6}) and len(tokens) == 6
        answers.append(" ".join(tokens))
    turns = httpx.get(f"{example.url}/sessions/s1", timeout=10).json()["turns"]
    assert turns == [{"prompt": "the model", "answer": answers[0]},
                     {"prompt": "and then", "answer": answers[1]}]
