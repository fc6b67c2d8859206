"""The master's control socket (server side) and its wire codec, shared with gunicorn.ctl.

``codec`` (sans-IO framing), ``errors``, ``paths`` (default socket path) are what a client
needs; ``server``, ``binding``, ``connection``, ``commands`` and ``views`` are the arbiter's.
"""
