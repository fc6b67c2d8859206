"""Config file for the precedence tests: every value here is overridden by a higher layer."""

workers = 4
proc_name = "from-config-file"
backlog = 111
keepalive = 7
timeout = 55
not_a_setting = "ignored"
