"""The WSGI layer (PEP 3333): environ, wsgi.input, start_response and wsgi.file_wrapper.

The modules here know nothing about sockets or threads: a driver hands them a
:class:`~gunicorn.wsgi.input.BodySource` to pull body bytes from and a
:class:`~gunicorn.wsgi.response.Transport` to push response bytes into.
"""
