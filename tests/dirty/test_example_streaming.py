"""examples/streaming: FastAPI on the asgi worker streams a dirty app's tokens as SSE."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import DirtyServer, sse_events
from harness import REPO, wait_until

MODEL = "chat_app:ChatApp"


@pytest.fixture(scope="module")
def example() -> Iterator[DirtyServer]:
    # The example's own gunicorn.conf.py, with one HTTP worker to keep the test small.
    server = DirtyServer(["-c", "gunicorn.conf.py", "-w", "1", "--no-control-socket",
                          "sse_app:app"], cwd=REPO / "examples" / "streaming")
    with server:
        server.booted(1, timeout=30)
        yield server


def test_tokens_arrive_as_server_sentsse_events(example: DirtyServer) -> None:
    params = {"prompt": "the dirty worker", "max_tokens": "12", "delay": "0.01"}
    with httpx.stream("GET", f"{example.url}/chat", params=params, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert resp.headers["cache-control"] == "no-cache"
        events = list(sse_events(resp.iter_lines()))
    tokens = [data for event, data in events if event == "token"]
    assert events[-1] == ("done", {"tokens": 12}) and len(tokens) == 12
    # The same prompt gives the same answer: the SSE carried exactly what the model yielded.
    with example.client() as client:
        assert client.execute(MODEL, "generate", "the dirty worker", 12, 0) == tokens


def test_a_browser_leaving_stops_the_model(example: DirtyServer) -> None:
    params = {"prompt": "the model", "max_tokens": "500", "delay": "0.02"}
    with httpx.stream("GET", f"{example.url}/chat", params=params, timeout=10) as resp:
        events = sse_events(resp.iter_lines())
        assert [next(events)[0] for _ in range(3)] == ["token"] * 3
    # The stream is cancelled in the dirty worker long before its 500 tokens (10 s) are done.
    wait_until(lambda: sum(w["in_flight"] for w in example.status()["workers"]) == 0, 4,
               message="the dirty stream cancelled")


def test_the_page_and_input_validation(example: DirtyServer) -> None:
    page = httpx.get(f"{example.url}/", timeout=10)
    assert page.status_code == 200 and "EventSource" in page.text
    assert httpx.get(f"{example.url}/chat", params={"prompt": ""}, timeout=10).status_code == 422
