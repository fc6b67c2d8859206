"""Real ASGI frameworks on the asgi worker: Starlette, FastAPI and a small Django project."""

from __future__ import annotations

import httpx
import pytest
from apps.asgi_client import serve
from harness import APPS, wait_until

pytest.importorskip("starlette")


def test_starlette():
    with serve("asgi_frameworks:starlette_app", "--root-path", "/app") as srv, \
            httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/").text == "Hello from Starlette"
        state = client.get(f"{srv.url}/state").json()
        assert state["started_by"] == "lifespan" and state["root_path"] == "/app"
        assert state["url"] == f"{srv.url}/app/state"
        assert client.post(f"{srv.url}/upload", content=b"z" * 500_000).json() == {"size": 500_000}
        resp = client.get(f"{srv.url}/stream")
        assert resp.text == "0\n1\n2\n3\n4\n" and resp.headers["transfer-encoding"] == "chunked"
        assert client.get(f"{srv.url}/background").text == "queued"
        wait_until(lambda: client.get(f"{srv.url}/done").json() == ["task ran"])
        assert client.get(f"{srv.url}/nope").status_code == 404


def test_fastapi():
    pytest.importorskip("fastapi")
    with serve("asgi_frameworks:fastapi_app") as srv, httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/items/7?q=x").json() == {"item_id": 7, "q": "x"}
        resp = client.post(f"{srv.url}/items", json={"name": "pen", "price": 1.5})
        assert resp.json() == {"name": "pen", "double": 3.0}
        assert client.post(f"{srv.url}/items", json={"name": "pen"}).status_code == 422
        assert client.get(f"{srv.url}/items/abc").status_code == 422
        assert client.get(f"{srv.url}/missing").json() == {"detail": "no such thing"}
        resp = client.get(f"{srv.url}/crash")
        assert resp.status_code == 500 and "fastapi-internal-detail" not in resp.text
        srv.wait_for_log("fastapi-internal-detail")


def test_django_asgi():
    pytest.importorskip("django")
    project = APPS / "django_project"
    with serve("asgi_django:application", cwd=project) as srv, httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/").text == "Hello from Django"
        resp = client.post(f"{srv.url}/echo/?x=1", content=b'{"n": 5}',
                           headers={"Content-Type": "application/json"})
        assert resp.json() == {"method": "POST", "body": '{"n": 5}', "path": "/echo/",
                               "script_name": "", "query": {"x": "1"}, "data": {"n": 5}}
        assert client.get(f"{srv.url}/nope").status_code == 404
