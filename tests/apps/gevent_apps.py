"""WSGI apps for the gevent worker: cooperative and hub-blocking sleeps, what is patched.

Every other path is :mod:`wsgi_apps`' (echo, streaming, files, errors ...).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import wsgi_apps

# Was the socket module gevent's when this module was imported (patched before the app)?
PATCHED_AT_IMPORT = socket.socket.__module__.startswith("gevent")


def _text(start_response, body: bytes):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def sleep(environ, start_response):
    # time.sleep as the application calls it: cooperative once gevent patched it.
    time.sleep(float(environ["QUERY_STRING"] or "1"))
    return _text(start_response, b"slept")


class Rendezvous:
    """Requests that wait until ``n`` of them are inside the application at the same time: a
    proof of concurrency that needs no clock (each waits at most ``timeout`` seconds)."""

    def __init__(self) -> None:
        self.arrived = 0
        self.cond: threading.Condition | None = None

    def meet(self, n: int, timeout: float = 20.0) -> bool:
        if self.cond is None:  # made in the worker, after the patching (also with --preload)
            self.cond = threading.Condition()
        with self.cond:
            self.arrived += 1
            self.cond.notify_all()
            return self.cond.wait_for(lambda: self.arrived >= n, timeout)


RENDEZVOUS = Rendezvous()


def together(environ, start_response):
    # /together?N: answered once N requests (this one included) are in the application at once.
    if RENDEZVOUS.meet(int(environ["QUERY_STRING"])):
        return _text(start_response, b"together")
    start_response("504 Gateway Timeout", [("Content-Length", "5")])
    return [b"alone"]


def block(environ, start_response):
    # The real time.sleep: blocks the hub, so no other greenlet runs meanwhile.
    from gevent import monkey

    monkey.get_original("time", "sleep")(float(environ["QUERY_STRING"] or "1"))
    return _text(start_response, b"blocked")


def spin(environ, start_response):
    # A CPU loop never yields to the hub either.
    end = time.monotonic() + float(environ["QUERY_STRING"] or "1")
    while time.monotonic() < end:
        pass
    return _text(start_response, b"spun")


def patched(environ, start_response):
    from gevent import monkey

    found = {name: monkey.is_module_patched(name)
             for name in ("socket", "time", "select", "threading", "ssl", "os", "signal")}
    body = json.dumps({"patched": found, "at_import": PATCHED_AT_IMPORT,
                       "multithread": environ["wsgi.multithread"],
                       "multiprocess": environ["wsgi.multiprocess"]}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


ROUTES = {"/sleep": sleep, "/block": block, "/spin": spin, "/patched": patched,
          "/together": together}


def app(environ, start_response):
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        return wsgi_apps.app(environ, start_response)
    return handler(environ, start_response)
