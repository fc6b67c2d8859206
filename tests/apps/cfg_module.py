"""A config loaded as ``-c python:cfg_module``."""

workers = 3
proc_name = "from-python-module"
wsgi_app = "hello:app"
