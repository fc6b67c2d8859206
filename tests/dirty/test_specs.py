"""App specs and allocation: sans-IO, no processes."""

from __future__ import annotations

import pytest
from gunicorn.dirty.allocation import Allocator
from gunicorn.dirty.specs import AppSpec, parse_spec, parse_specs, resolve_limits


@pytest.mark.parametrize(("text", "path", "limit"), [
    ("mod:App", "mod:App", None),
    ("pkg.mod:App", "pkg.mod:App", None),
    ("pkg.mod:Outer.App:3", "pkg.mod:Outer.App", 3),
    ("  mod:App:1 ", "mod:App", 1),
], ids=["plain", "dotted-module", "nested-class-limit", "whitespace"])
def test_parse_spec_accepts(text: str, path: str, limit: int | None) -> None:
    spec = parse_spec(text)
    assert (spec.import_path, spec.limit, spec.explicit) == (path, limit, limit is not None)


@pytest.mark.parametrize("text", [
    "mod", "mod:", ":App", "mod:App:0", "mod:App:-1", "mod:App:x", "mod:App:1:2", "mod-x:App",
    "mod:App:", "",
], ids=["no-colon", "no-class", "no-module", "zero", "negative", "not-int", "three-colons",
        "bad-module", "empty-count", "empty"])
def test_parse_spec_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_spec(text)


def test_parse_specs_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="more than once"):
        parse_specs(["a:B", "a:B:2"])


def test_resolve_limits_prefers_suffix_over_class_attribute() -> None:
    specs = parse_specs(["a:Suffixed:2", "a:Declared", "a:Unlimited"])
    limits = {"a:Suffixed": 5, "a:Declared": 3, "a:Unlimited": None}
    resolved = resolve_limits(specs, limits.__getitem__)
    assert [s.limit for s in resolved] == [2, 3, None]


def _alloc(*limits: tuple[str, int | None]) -> Allocator:
    return Allocator([AppSpec(path, limit, limit is not None) for path, limit in limits])


def test_limited_apps_are_spread_not_stacked() -> None:
    # gunicorn stacks these on 4 workers and never starts the other 5.
    alloc = _alloc(("E", 2), ("I", 2), ("D", 4), ("S", 1))
    plans = alloc.initial(9)
    assert len(plans) == 9
    assert all(len(plan) == 1 for plan in plans)
    counts = alloc.holders(dict(enumerate(plans)))
    assert counts == {"E": 2, "I": 2, "D": 4, "S": 1}


def test_unlimited_apps_go_everywhere_and_limited_ones_to_least_loaded() -> None:
    alloc = _alloc(("All", None), ("One", 1), ("Two", 2))
    plans = alloc.initial(3)
    assert all("All" in plan for plan in plans)
    assert sorted(len(plan) for plan in plans) == [2, 2, 2]


def test_workers_without_apps_are_not_planned() -> None:
    assert _alloc(("One", 1)).initial(4) == [("One",)]


def test_new_worker_gets_unlimited_and_under_limit_apps() -> None:
    alloc = _alloc(("All", None), ("Two", 2), ("One", 1))
    current = {1: ("All", "Two", "One")}
    assert alloc.for_new_worker(current) == ("All", "Two")
    assert _alloc(("One", 1)).for_new_worker({1: ("One",)}) == ()


def test_removal_never_goes_below_an_apps_declared_count() -> None:
    alloc = _alloc(("All", None), ("Two", 2))
    current = {1: ("All", "Two"), 2: ("All", "Two"), 3: ("All",)}
    assert alloc.removable(current, [1, 2, 3]) == (3, "")
    key, reason = alloc.removable({1: ("All", "Two"), 2: ("All", "Two")}, [1, 2])
    assert key is None
    assert "Two" in reason and "declares 2 workers" in reason and "only holders" in reason
    key, reason = alloc.removable({1: ("All",)}, [1])
    assert key is None and "All" in reason


def test_removal_picks_the_first_worker_that_keeps_every_floor() -> None:
    alloc = _alloc(("One", 1), ("Two", 2))
    current = {1: ("One",), 2: ("Two",), 3: ("Two",), 4: ("Two",)}
    assert alloc.removable(current, [1, 2, 3, 4]) == (2, "")
