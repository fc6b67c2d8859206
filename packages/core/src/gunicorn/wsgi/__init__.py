"""The WSGI layer (PEP 3333): environ, wsgi.input, the exchange and wsgi.file_wrapper.

The modules here know nothing about sockets or threads: a driver hands an
:class:`~gunicorn.wsgi.exchange.Exchange` an :class:`~gunicorn.wsgi.exchange.ExchangeStream`
(HTTP/1.1: :class:`~gunicorn.wsgi.response.HTTP1Stream` over a connection) to pull body bytes
from and push the response into, and :class:`~gunicorn.wsgi.exchange.ExchangeRunner` runs the
application around it.
"""
