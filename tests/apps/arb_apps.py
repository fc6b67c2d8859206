"""Apps and hooks for the arbiter tests."""

import os

MARK_DIR = os.environ.get("ARB_MARK_DIR", "")


def app(environ, start_response):
    body = os.environ.get("ARB_BODY", "ok")
    if os.environ.get("ARB_FROM_PLUGIN"):
        body += " plugin=" + os.environ["ARB_FROM_PLUGIN"]
    body = body.encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def _mark(name: str, text: str = "") -> None:
    if MARK_DIR:
        with open(os.path.join(MARK_DIR, name), "a") as fh:
            fh.write(text + "\n")


def worker_abort(worker):
    _mark("worker_abort", str(os.getpid()))


def worker_exit(server, worker):
    _mark("worker_exit", str(os.getpid()))


def child_exit(server, worker):
    _mark("child_exit", str(worker.pid))


def on_starting(server):
    _mark("on_starting", str(os.getpid()))


def when_ready(server):
    _mark("when_ready", str(os.getpid()))


def on_reload(server):
    _mark("on_reload", str(os.getpid()))


def on_exit(server):
    _mark("on_exit", str(os.getpid()))


def nworkers_changed(server, new, old):
    _mark("nworkers_changed", f"{old}->{new}")


def post_fork(server, worker):
    _mark("post_fork", str(os.getpid()))


def pre_fork(server, worker):
    _mark("pre_fork", str(os.getpid()))


def stray_pre_fork(server, worker):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    _mark("stray", str(pid))


def worker_int(worker):
    _mark("worker_int", str(os.getpid()))
