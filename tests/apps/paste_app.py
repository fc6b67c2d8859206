"""A PasteDeploy application factory, as a Pyramid or Pylons project has one."""


def make_app(global_conf, greeting="hello", **local_conf):
    body = f"{greeting}; color={global_conf.get('color', '-')}".encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return app
