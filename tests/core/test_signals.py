"""USR1 (reopen logs), USR2 (re-exec on the same sockets), WINCH, and the worker's signals."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time

from apps.arb_support import arb_server, get, serving_pid
from harness import children_of, pid_alive, wait_until


def test_usr1_reopens_the_log_file(tmp_path):
    errorlog = tmp_path / "error.log"
    srv = arb_server([f"errorlog={errorlog}", "workers=1"], tmp_path).start()
    try:
        srv.wait_workers(1)
        rotated = tmp_path / "error.log.1"
        os.rename(errorlog, rotated)
        srv.send_signal(signal.SIGUSR1)
        wait_until(errorlog.exists, 10, message="a new error.log")
        srv.send_signal(signal.SIGTTIN)
        wait_until(lambda: errorlog.exists() and "Booting worker" in errorlog.read_text(), 10)
        assert get(srv)[0] == 200
    finally:
        srv.stop()


def test_winch_is_ignored_when_not_daemonised(tmp_path):
    srv = arb_server(["workers=2", "loglevel=debug"], tmp_path).start()
    try:
        workers = srv.wait_workers(2)
        srv.send_signal(signal.SIGWINCH)
        srv.wait_for_log("SIGWINCH ignored")
        assert sorted(srv.worker_pids()) == sorted(workers)
    finally:
        srv.stop()


class RequestLoop(threading.Thread):
    """Issues requests back to back and records every failure."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(daemon=True)
        self.host, self.port = host, port
        self.stopped = threading.Event()
        self.ok = 0
        self.errors: list[str] = []
        self.pids: set[int] = set()

    def run(self) -> None:
        while not self.stopped.is_set():
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode()
                if resp.status != 200:
                    self.errors.append(f"status {resp.status}")
                else:
                    self.ok += 1
                    self.pids.add(int(body.split()[0].split("=")[1]))
            except OSError as exc:
                self.errors.append(repr(exc))
            finally:
                conn.close()
            time.sleep(0.005)


def _read_pid(path):
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def test_usr2_then_term_old_master_keeps_serving(tmp_path):
    pidfile = tmp_path / "master.pid"
    srv = arb_server(["workers=2", f"pidfile={pidfile}"], tmp_path).start()
    loop = RequestLoop(srv.host, srv.port)
    new_master = None
    try:
        old_workers = set(srv.wait_workers(2))
        assert _read_pid(pidfile) == srv.pid
        loop.start()
        srv.send_signal(signal.SIGUSR2)
        new_master = wait_until(lambda: _read_pid(tmp_path / "master.pid.2"), 15,
                                message="master.pid.2")
        assert new_master in children_of(srv.pid)
        wait_until(lambda: len(children_of(new_master)) == 2, 15, message="new workers")
        new_workers = set(children_of(new_master))
        wait_until(lambda: loop.pids & new_workers, 15, message="a reply from a new worker")
        srv.send_signal(signal.SIGTERM)
        assert srv.wait_exit(15) == 0
        # Promotion: the new master takes over the real pidfile name.
        wait_until(lambda: _read_pid(pidfile) == new_master, 10, message="promotion")
        assert not (tmp_path / "master.pid.2").exists()
        served = loop.ok
        wait_until(lambda: loop.ok > served + 20, 10, message="more replies")
        loop.stopped.set()
        loop.join(10)
        assert loop.errors == []
        assert not any(pid_alive(p) for p in old_workers)
        assert serving_pid(srv) in new_workers
    finally:
        loop.stopped.set()
        if new_master and pid_alive(new_master):
            os.kill(new_master, signal.SIGTERM)
            wait_until(lambda: not pid_alive(new_master), 15, message="new master exit")
        srv.stop()


def test_second_usr2_is_ignored_while_a_child_exists(tmp_path):
    pidfile = tmp_path / "master.pid"
    srv = arb_server([f"pidfile={pidfile}"], tmp_path).start()
    new_master = None
    try:
        srv.wait_workers(1)
        srv.send_signal(signal.SIGUSR2)
        new_master = wait_until(lambda: _read_pid(tmp_path / "master.pid.2"), 15)
        srv.send_signal(signal.SIGUSR2)
        srv.wait_for_log("USR2 signal ignored. Child exists.")
        # The new master refuses to re-exec itself while its parent is alive.
        os.kill(new_master, signal.SIGUSR2)
        srv.wait_for_log("USR2 signal ignored. Parent exists.")
        # Stopping the new master lets the old one carry on alone.
        os.kill(new_master, signal.SIGTERM)
        srv.wait_for_log(rf"Master\.2 \(pid:{new_master}\) exited")
        assert _read_pid(pidfile) == srv.pid
        assert get(srv)[0] == 200
    finally:
        if new_master and pid_alive(new_master):
            os.kill(new_master, signal.SIGKILL)
        srv.stop()


def test_worker_quits_quickly_on_quit_and_runs_worker_int(tmp_path):
    srv = arb_server(["workers=1", "worker_int=arb_apps.worker_int"], tmp_path).start()
    try:
        worker = serving_pid(srv)  # booted: its handlers are installed
        os.kill(worker, signal.SIGQUIT)
        wait_until(lambda: srv.worker_pids() and worker not in srv.worker_pids(), 10)
        assert (tmp_path / "worker_int").read_text().split() == [str(worker)]
    finally:
        srv.stop()
