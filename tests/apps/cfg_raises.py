"""A config file that fails while it runs."""

workers = 2
raise RuntimeError("boom from the config file")
