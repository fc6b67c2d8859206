"""An app whose import fails with an ordinary exception (worker boot failure, exit 3)."""

raise RuntimeError("arb_broken_app refuses to import")
