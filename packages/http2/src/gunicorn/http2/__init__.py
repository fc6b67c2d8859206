"""gunicorn-http2: HTTP/2 connections for the gthread and asgi workers of gunicorn-core."""
