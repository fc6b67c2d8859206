"""A config file with a bad setting value."""

workers = "lots"
