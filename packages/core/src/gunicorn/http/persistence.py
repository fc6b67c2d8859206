"""Connection persistence (RFC 9112 §9.3): the policy every HTTP/1.1 driver shares.

One spelling for each number, whichever worker (sync, gthread, asgi) applies it:

* :data:`FIRST_REQUEST_WAIT`: a new connection gets at least this long to send its first
  request, whatever ``keepalive`` says (a client that has just connected is about to speak);
* :data:`DRAIN_LIMIT`: after a response, at most this much unread request body is read and
  discarded to keep the connection; a larger rest closes it instead (RFC 9112 §9.6);
* :data:`DRAIN_IDLE_GRACE`: on a graceful stop, an idle keep-alive connection stays open this
  much longer (a request its client already sent is served, with ``Connection: close``),
  then it is closed.
"""

from __future__ import annotations

FIRST_REQUEST_WAIT = 5.0
DRAIN_LIMIT = 64 * 1024
DRAIN_IDLE_GRACE = 1.0
