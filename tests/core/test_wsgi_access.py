"""What the access log and the pre/post_request hooks see, on both workers."""

from __future__ import annotations

import pytest
from apps.wsgi_client import exchange, serve

HOOKS = '''
import sys

def pre_request(worker, req):
    print("PRE", req.method, req.path, req.query, req.version, req.peer_addr[0], flush=True)

def post_request(worker, req, environ, resp):
    print("POST", req.uri, resp.status_code, resp.sent, environ["REMOTE_ADDR"], flush=True)
'''


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_access_log_and_hooks(worker, tmp_path):
    conf = tmp_path / "hooks_conf.py"
    conf.write_text(HOOKS)
    args = ["-c", str(conf), "--access-logfile", "-",
            "--access-logformat", '%(h)s "%(r)s" %(s)s %(b)s %({user-agent}i)s', "wsgi_apps:app"]
    with serve(args, worker=worker) as srv:
        exchange(srv, b"GET /?a=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe\r\n\r\n")
        exchange(srv, b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        srv.wait_for_log(r'127\.0\.0\.1 "GET /\?a=1 HTTP/1\.1" 200 13 probe')
        srv.wait_for_log(r"PRE GET / a=1 \(1, 1\) 127\.0\.0\.1")
        srv.wait_for_log(r"POST /\?a=1 200 13 127\.0\.0\.1")
        srv.wait_for_log(r'"GET /boom HTTP/1\.1" 500')
