"""Ingest leader election on a real database: one leader, takeover, keeping it through outages."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from db.locks import INGEST_LEADER_LOCK
from ingest.leader import LeaderElector, libpq_url
from tests.spot_support import database_down, wait_until


class Recorder:
    """Start/stop callbacks that note what happened."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def elector(self, url: str, retry_seconds: float = 0.1) -> LeaderElector:
        return LeaderElector(url, on_elected=lambda: self.events.append("elected"),
                             on_lost=lambda: self.events.append("lost"),
                             on_retaken=lambda: self.events.append("retaken"),
                             retry_seconds=retry_seconds)


@pytest.fixture
def admin(database_url):
    with psycopg.connect(libpq_url(database_url), autocommit=True) as connection:
        yield connection


def lock_holders(admin) -> list[str]:
    return [row[0] for row in admin.execute(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = %s",
        (INGEST_LEADER_LOCK & 0xFFFFFFFF,))]


def test_one_leader_at_a_time_and_the_other_takes_over(database_url, admin):
    first, second = Recorder(), Recorder()
    a = first.elector(database_url).start()
    wait_until(lambda: a.is_leader, message="a leader")
    b = second.elector(database_url).start()
    try:
        wait_until(lambda: b.elections == 0 and lock_holders(admin), message="one holder")
        assert lock_holders(admin) == ["p2pdash-ingest-leader"] and not b.is_leader
        a.stop()
        assert first.events == ["elected", "lost"] and not a.is_leader
        wait_until(lambda: b.is_leader, message="the other process taking over")
        assert second.events == ["elected"]
    finally:
        a.stop()
        b.stop()
    assert lock_holders(admin) == []


def test_an_outage_keeps_the_leadership_and_the_lock_is_retaken(database_url, pg_cluster):
    recorder = Recorder()
    elector = recorder.elector(database_url).start()
    try:
        wait_until(lambda: elector.holds_lock, message="a leader")
        with database_down(pg_cluster, database_url):
            wait_until(lambda: elector.outage_since is not None, message="the outage noticed")
            time.sleep(0.5)  # several failed attempts to reconnect
            assert elector.is_leader and not elector.holds_lock
        wait_until(lambda: elector.holds_lock, message="the lock re-taken")
        assert recorder.events == ["elected", "retaken"]
        assert (elector.outages, elector.retakes, elector.elections) == (1, 1, 1)
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            assert lock_holders(admin) == ["p2pdash-ingest-leader"]
    finally:
        elector.stop()
    assert recorder.events == ["elected", "retaken", "lost"]


def test_a_leader_cut_off_steps_down_if_another_took_the_lock(database_url, admin):
    recorder = Recorder()
    elector = recorder.elector(database_url, retry_seconds=0.5).start()
    try:
        wait_until(lambda: elector.holds_lock, message="a leader")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'p2pdash-ingest-leader'")
        admin.execute("SELECT pg_advisory_lock(%s)", (INGEST_LEADER_LOCK,))  # the other one
        wait_until(lambda: recorder.events == ["elected", "lost"], message="stepping down")
        assert not elector.is_leader
        admin.execute("SELECT pg_advisory_unlock(%s)", (INGEST_LEADER_LOCK,))
        wait_until(lambda: recorder.events == ["elected", "lost", "elected"],
                   message="elected again once the lock is free")
    finally:
        elector.stop()


def test_a_leader_whose_old_session_still_holds_the_lock_takes_it_back(database_url, admin):
    """A network cut the server has not noticed yet: the old session still holds the lock.
    A stand-in session plays it: queued for the lock, it gets it as the real one ends."""
    recorder = Recorder()
    elector = recorder.elector(database_url, retry_seconds=0.2).start()
    try:
        wait_until(lambda: elector.holds_lock, message="a leader")
        old_pid = elector._backend_pid
        with psycopg.connect(libpq_url(database_url), autocommit=True,
                             application_name="p2pdash-ingest-leader") as stand_in:
            queued = threading.Thread(target=stand_in.execute, args=(
                "SELECT pg_advisory_lock(%s)", (INGEST_LEADER_LOCK,)), daemon=True)
            queued.start()
            wait_until(lambda: admin.execute("SELECT count(*) FROM pg_locks WHERE locktype = "
                                             "'advisory' AND NOT granted").fetchone()[0],
                       message="the stand-in queued for the lock")
            elector._backend_pid = stand_in.info.backend_pid  # what the elector remembers
            admin.execute("SELECT pg_terminate_backend(%s)", (old_pid,))
            wait_until(lambda: elector.retakes == 1, message="the lock taken back")
            queued.join(5)
        assert recorder.events == ["elected", "retaken"] and elector.holds_lock
    finally:
        elector.stop()
