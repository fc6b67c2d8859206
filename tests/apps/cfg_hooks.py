"""Server hooks for the config tests: good ones and one with the wrong arity."""


def on_starting(server):
    pass


def post_request(worker, req):
    pass


def two_args(server, worker):
    pass
