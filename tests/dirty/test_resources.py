"""Resource slots (issue 14): the sans-IO pool and setting parser, then real processes: tokens
distinct per worker and seen from inside the app, freed and re-granted after a SIGKILL, never
double-booked across a HUP, apps short of tokens not started."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DirtyServer, descendants, dirty_server
from gunicorn.dirty.errors import DirtyNoWorkersAvailableError
from gunicorn.dirty.resources import ResourcePool, parse_needs, parse_resources, resource_environ
from harness import pid_alive, run_gunicorn, wait_until

GPU = "dirty_pool_apps:GpuApp"


# -- sans-IO ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (["gpu=4"], {"gpu": ["0", "1", "2", "3"]}),
    (["gpu=0,1", "lic=a"], {"gpu": ["0", "1"], "lic": ["a"]}),
    ({"gpu": 2, "tpu": "x,y"}, {"gpu": ["0", "1"], "tpu": ["x", "y"]}),
    ([], {}),
], ids=["count", "lists", "dict", "none"])
def test_parse_resources(value: object, expected: dict) -> None:
    assert parse_resources(value) == expected


@pytest.mark.parametrize("value", [["gpu"], ["gpu=0"], ["gpu=0,0"], ["g-pu=1"],
                                   ["gpu=1", "GPU=2"], ["gpu=a b"]],
                         ids=["no-equals", "zero", "twice", "bad-name", "dup-name", "space"])
def test_parse_resources_rejects(value: list[str]) -> None:
    with pytest.raises(ValueError):
        parse_resources(value)


def test_bad_resource_setting_exits_2_with_one_line() -> None:
    result = run_gunicorn(["--dirty-resource", "gpu=0,0", "--dirty-app", GPU,
                           "--dirty-workers", "1", "dirty_http:app"])
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "dirty_resources" in lines[0]


def test_needs_are_checked_against_the_configured_resources() -> None:
    configured = {"gpu": ["0", "1"]}
    assert parse_needs({"gpu": 1}, configured) == {"gpu": 1}
    for bad in ({"tpu": 1}, {"gpu": 3}, {"gpu": 0}, ["gpu"]):
        with pytest.raises(ValueError):
            parse_needs(bad, configured)


def test_pool_grants_distinct_tokens_and_prefers_the_old_ones() -> None:
    pool = ResourcePool({"gpu": ["0", "1", "2"]})
    needs = {"A": {"gpu": 1}}
    grants = [pool.grant(key, ["A"], needs) for key in (1, 2)]
    assert [g["A"]["gpu"] for g in grants] == [["0"], ["1"]]
    assert pool.fit(["A", "A"], needs) == (["A"], ["A"])
    assert pool.release(1) == ["gpu:0"]
    assert pool.grant(3, ["A"], needs, prefer={"A": {"gpu": ["2"]}}) == {"A": {"gpu": ["2"]}}
    with pytest.raises(ValueError):
        pool.grant(4, ["A", "A"], needs)  # all or nothing: token 0 is left free
    assert pool.free("gpu") == ["0"]


def test_resource_environ() -> None:
    env = resource_environ({"A": {"gpu": ["2"]}, "B": {"gpu": ["3"], "lic": ["x"]}})
    assert env == {"GUNICORN_DIRTY_RESOURCE_GPU": "2,3", "GUNICORN_DIRTY_RESOURCE_LIC": "x",
                   "CUDA_VISIBLE_DEVICES": "2,3"}


# -- real processes -----------------------------------------------------------------------------


@contextlib.contextmanager
def gpu_server(tmp_path: Path, tokens: str, workers: int,
               booted: int | None = None) -> Iterator[DirtyServer]:
    with dirty_server("--dirty-app", GPU, "--dirty-resource", f"gpu={tokens}",
                      "--dirty-workers", str(workers), workers=workers if booted is None
                      else booted, env={"DIRTY_TEST_DIR": str(tmp_path)}) as server:
        yield server


def _seen(server: DirtyServer) -> dict[int, dict]:
    """What each worker's app saw at init, via calls (rotation reaches every holder)."""
    count = len(server.status()["workers"])
    with server.client() as client:
        seen = [client.execute(GPU, "tokens") for _ in range(count * 2)]
    return {s["pid"]: s for s in seen}


def _live_tokens(tmp_path: Path, arbiter: int) -> list[str]:
    """The token of every live dirty worker, from the files their inits wrote."""
    tokens = []
    for pid in descendants(arbiter):
        path = tmp_path / f"token-{pid}"
        if pid_alive(pid) and path.exists():
            tokens.append(path.read_text())
    return tokens


def test_each_worker_sees_its_own_token(tmp_path: Path) -> None:
    with gpu_server(tmp_path, "0,1,2", 3) as server:
        seen = _seen(server)
        assert len(seen) == 3
        tokens = sorted(s["resources"]["gpu"][0] for s in seen.values())
        assert tokens == ["0", "1", "2"]
        for s in seen.values():
            [token] = s["resources"]["gpu"]
            assert s["env"] == s["cuda"] == s["cuda_at_import"] == token
        [gpu] = server.status()["resources"]
        assert gpu["name"] == "gpu" and gpu["free"] == []
        holders = {t["token"]: t["holder"]["pid"] for t in gpu["tokens"]}
        assert holders == {s["resources"]["gpu"][0]: pid for pid, s in seen.items()}


def test_apps_short_of_tokens_are_not_started(tmp_path: Path) -> None:
    with gpu_server(tmp_path, "2", 3, booted=2) as server:
        server.wait_for_log("is not started in one more worker: it needs gpu x1")
        assert server.log().count("is not started in one more worker") == 1  # logged once
        status = server.status()
        app = next(a for a in status["apps"] if a["path"] == GPU)
        assert app["current_workers"] == 2 and "gpu" in app["not_started"]
        assert status["resources"][0]["free"] == []


def test_tokens_are_freed_and_regranted_after_sigkill(tmp_path: Path) -> None:
    with gpu_server(tmp_path, "0,1", 2) as server:
        before = {pid: s["resources"]["gpu"][0] for pid, s in _seen(server).items()}
        victim, token = next(iter(before.items()))
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in [w["pid"] for w in server.status()["workers"]], 10,
                   message="victim gone")
        server.booted(2)
        after = {pid: s["resources"]["gpu"][0] for pid, s in _seen(server).items()}
        assert victim not in after and sorted(after.values()) == ["0", "1"]
        replacement = next(pid for pid in after if pid not in before)
        assert after[replacement] == token  # the dead worker's token went to its replacement
        server.wait_for_log("starting its replacement")


@pytest.mark.parametrize(("tokens", "workers"), [("0,1", 2), ("0,1,2,3", 2)],
                         ids=["old-first", "new-first"])
def test_hup_never_double_books_a_token(tmp_path: Path, tokens: str, workers: int) -> None:
    with gpu_server(tmp_path, tokens, workers) as server:
        arbiter = server.arbiter_pid()
        old = {w["pid"] for w in server.status()["workers"]}
        os.kill(arbiter, signal.SIGHUP)

        def replaced() -> bool:
            live = _live_tokens(tmp_path, arbiter)
            assert len(live) == len(set(live)), f"a token is held twice: {live}"
            status = server.status()
            pids = {w["pid"] for w in status["workers"]}
            return (not pids & old and not any(pid_alive(p) for p in old)
                    and len(status["workers"]) == workers
                    and all(w["state"] == "ready" for w in status["workers"]))

        wait_until(replaced, 20, interval=0.01, message="every worker replaced")
        assert sorted(_live_tokens(tmp_path, arbiter)) == sorted(
            t for s in _seen(server).values() for t in s["resources"]["gpu"])
        log = server.log()
        if workers == len(tokens.split(",")):
            assert "no spare tokens" in log
        else:
            assert "no spare tokens" not in log


def test_an_undeclared_resource_keeps_the_app_from_starting(tmp_path: Path) -> None:
    with dirty_server("--dirty-app", GPU, "--dirty-app", "dirty_apps:EchoApp",
                      "--dirty-workers", "1", env={"DIRTY_TEST_DIR": str(tmp_path)}) as server:
        server.wait_for_log("GpuApp is not started: it needs resource 'gpu'")
        with server.client() as client, pytest.raises(DirtyNoWorkersAvailableError) as info:
            client.execute(GPU, "tokens")
        assert "dirty_resources" in str(info.value)


def test_gunictl_shows_tokens_holders_and_free_ones(tmp_path: Path) -> None:
    from gunicorn.ctl.format import render
    from gunicorn.dirty.control import DirtyCommands

    with gpu_server(tmp_path, "0,1,2", 2) as server:
        commands = DirtyCommands(server.socket_path())
        text = render(["show", "dirty"], commands.show_dirty([]))
        pids = [w["pid"] for w in server.status()["workers"]]
        rows = [line.split() for line in text.splitlines() if line.strip().startswith("gpu ")]
        assert sorted(row[1] for row in rows) == ["0", "1", "2"]
        assert sorted(row[2] for row in rows) == sorted([*map(str, pids), "-"])
        assert "DECLARED" in text and "TOKENS" in text and "gpu:1" in text
        removed = render(["dirty", "remove"], commands.dirty_remove(["2"]))
        assert "removed: 1" in removed and "only holders of dirty_pool_apps:GpuApp" in removed
