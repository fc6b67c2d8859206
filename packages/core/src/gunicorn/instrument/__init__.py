"""Instrumentation: access-log atoms (:mod:`.access`) and StatsD metrics (:mod:`.statsd`)."""
