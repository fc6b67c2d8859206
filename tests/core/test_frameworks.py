"""Real frameworks served by the sync, gthread and gevent workers: Flask and a small Django
project."""

from __future__ import annotations

import httpx
import pytest
from apps.wsgi_client import GEVENT, serve
from harness import APPS

WORKERS = ["sync", "gthread", GEVENT]


@pytest.mark.parametrize("worker", WORKERS)
def test_flask(worker):
    pytest.importorskip("flask")
    with serve(["flask_app:app"], worker=worker) as srv, httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/").text == "Hello from Flask"
        resp = client.post(f"{srv.url}/echo", data={"a": "1", "b": "two"})
        assert resp.json()["form"] == {"a": "1", "b": "two"}
        resp = client.post(f"{srv.url}/echo", json={"k": [1, 2]})
        assert resp.json()["json"] == {"k": [1, 2]}
        assert client.get(f"{srv.url}/items/7?q=x").json() == {"id": 7, "q": "x",
                                                                "scheme": "http"}
        resp = client.get(f"{srv.url}/error")
        assert resp.status_code == 500 and "flask-internal-detail" not in resp.text
        assert client.get(f"{srv.url}/missing").status_code == 404


@pytest.mark.parametrize("worker", WORKERS)
def test_django(worker):
    pytest.importorskip("django")
    project = APPS / "django_project"
    with serve(["djproj.wsgi:application"], worker=worker, cwd=project) as srv, \
            httpx.Client(timeout=5) as client:
        assert client.get(f"{srv.url}/").text == "Hello from Django"
        resp = client.post(f"{srv.url}/echo/?x=1", content=b'{"n": 5}',
                           headers={"Content-Type": "application/json"})
        assert resp.json() == {"method": "POST", "body": '{"n": 5}', "path": "/echo/",
                               "script_name": "", "query": {"x": "1"}, "data": {"n": 5}}
        assert client.get(f"{srv.url}/nope").status_code == 404


def test_django_under_script_name():
    pytest.importorskip("django")
    project = APPS / "django_project"
    with serve(["djproj.wsgi:application"], worker="gthread", cwd=project,
               env={"SCRIPT_NAME": "/mount"}) as srv, httpx.Client(timeout=5) as client:
        resp = client.post(f"{srv.url}/mount/echo/", content=b"1")
        assert resp.json()["path"] == "/mount/echo/" and resp.json()["script_name"] == "/mount"
        assert client.get(f"{srv.url}/elsewhere").status_code == 500
