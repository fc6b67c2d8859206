"""Access-log atoms, computed from plain resp/req/environ objects (no sockets)."""

import datetime
import os
import re
from types import SimpleNamespace

import pytest
from gunicorn.instrument.access import AccessAtoms, DefaultingAtoms


def make_atoms(request_time=datetime.timedelta(seconds=2, microseconds=345678), **changes):
    resp = SimpleNamespace(status="404 Not Found", status_code=404, sent=1234,
                           headers=[("Content-Type", "text/html"), ("X-Trace", "a"),
                                    ("X-Trace", "b")])
    req = SimpleNamespace(method="POST", uri="/path/x?a=1&b=2", path="/path/x", query="a=1&b=2",
                          version=(1, 0),
                          headers=[("HOST", "example.org"), ("USER-AGENT", "curl/8"),
                                   ("X-QUOTED", 'say "hi"')])
    environ = {"REMOTE_ADDR": "10.1.2.3", "REQUEST_METHOD": "POST",
               "RAW_URI": "/path/x?a=1&b=2", "SERVER_PROTOCOL": "HTTP/1.0",
               "PATH_INFO": "/path/x", "QUERY_STRING": "a=1&b=2",
               "HTTP_USER_AGENT": "curl/8", "HTTP_REFERER": "http://ref/",
               "HTTP_AUTHORIZATION": "Basic YWxpY2U6c2VjcmV0",  # alice:secret
               "wsgi.url_scheme": "http"}
    for key, value in changes.items():
        target, _, attr = key.partition("__")
        obj = {"resp": resp, "req": req}.get(target)
        if obj is None:
            if value is None:
                environ.pop(attr, None)
            else:
                environ[attr] = value
        else:
            setattr(obj, attr, value)
    return AccessAtoms(resp, req, environ, request_time)


@pytest.mark.parametrize(("atom", "expected"), [
    ("h", "10.1.2.3"),
    ("l", "-"),
    ("u", "alice"),
    ("r", "POST /path/x?a=1&b=2 HTTP/1.0"),
    ("s", "404"),
    ("m", "POST"),
    ("U", "/path/x"),
    ("q", "a=1&b=2"),
    ("H", "HTTP/1.0"),
    ("b", "1234"),
    ("B", 1234),
    ("f", "http://ref/"),
    ("a", "curl/8"),
    ("T", 2),
    ("D", 2345678),
    ("M", 2345),
    ("L", "2.345678"),
    ("{host}i", "example.org"),
    ("{Host}i", "example.org"),
    ("{USER-AGENT}i", "curl/8"),
    ("{content-type}o", "text/html"),
    ("{CONTENT-TYPE}O", "text/html"),
    ("{x-trace}o", "b"),
    ("{remote_addr}e", "10.1.2.3"),
    ("{wsgi.url_scheme}e", "http"),
    ("{x-missing}i", "-"),
    ("{x-missing}o", "-"),
    ("{missing}e", "-"),
    ("{bad}x", "-"),
    ("nope", "-"),
], ids=lambda v: str(v))
def test_atom(atom, expected):
    assert make_atoms()[atom] == expected


def test_p_is_the_pid_in_angle_brackets():
    assert make_atoms()["p"] == f"<{os.getpid()}>"


def test_t_is_apache_common_log_time():
    assert re.fullmatch(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", make_atoms()["t"])


def test_double_quotes_are_escaped():
    assert make_atoms()["{x-quoted}i"] == 'say \\"hi\\"'


def test_float_request_time_is_seconds():
    atoms = make_atoms(request_time=1.5)
    assert (atoms["T"], atoms["D"], atoms["M"], atoms["L"]) == (1, 1500000, 1500, "1.500000")


def test_long_requests_count_days():
    atoms = make_atoms(request_time=datetime.timedelta(days=1, seconds=1))
    assert atoms["T"] == 86401


@pytest.mark.parametrize(("changes", "atom", "expected"), [
    ({"resp__sent": None}, "b", "-"),
    ({"resp__sent": None}, "B", "-"),
    ({"resp__sent": 0}, "b", "0"),
    ({"environ__HTTP_AUTHORIZATION": "Bearer token"}, "u", "-"),
    ({"environ__HTTP_AUTHORIZATION": "Basic !!!notbase64"}, "u", "-"),
    ({"environ__HTTP_AUTHORIZATION": None}, "u", "-"),
    ({"environ__REMOTE_ADDR": None}, "h", "-"),
    ({"resp__status_code": None}, "s", "404"),
    ({"environ__SERVER_PROTOCOL": None}, "H", "HTTP/1.0"),
    ({"environ__REQUEST_METHOD": None, "environ__RAW_URI": None}, "r",
     "POST /path/x?a=1&b=2 HTTP/1.0"),
    ({"environ__PATH_INFO": None}, "U", "/path/x"),
    ({"environ__HTTP_REFERER": None}, "f", "-"),
], ids=["b-none", "B-none", "b-zero", "bearer", "bad-base64", "no-auth", "no-remote",
        "status-text", "protocol-from-req", "request-line-from-req", "path-from-req",
        "no-referer"])
def test_atom_fallbacks(changes, atom, expected):
    assert make_atoms(**changes)[atom] == expected


def test_atoms_are_computed_only_when_the_format_uses_them():
    class Exploding:
        status = "200 OK"
        status_code = 200
        headers = []

        @property
        def sent(self):
            raise AssertionError("b/B computed although the format does not use them")

    atoms = AccessAtoms(Exploding(), SimpleNamespace(headers=[]), {"REMOTE_ADDR": "::1"}, 0.1)
    assert "%(h)s %(s)s" % atoms == "::1 200"  # noqa: UP031 -- %-mapping is the access-log API


def test_default_gunicorn_format():
    fmt = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
    line = fmt % make_atoms()
    assert re.fullmatch(r'10\.1\.2\.3 - alice \[[^]]+\] "POST /path/x\?a=1&b=2 HTTP/1\.0" 404 1234 '
                        r'"http://ref/" "curl/8"', line)


def test_iteration_lists_every_atom_for_json_formatters():
    atoms = make_atoms()
    keys = set(atoms)
    assert {"h", "s", "{host}i", "{content-type}o", "{remote_addr}e"} <= keys
    assert len(atoms) == len(list(atoms))
    assert dict(atoms)["s"] == "404"


def test_defaulting_atoms_wrap_a_plain_dict():
    atoms = DefaultingAtoms({"h": "1.1.1.1", "{x-a}i": "v", "custom": None})
    line = "%(h)s %({X-A}i)s %(missing)s %(custom)s" % atoms  # noqa: UP031 -- the log API
    assert line == "1.1.1.1 v - -"
