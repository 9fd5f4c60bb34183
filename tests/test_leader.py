"""Ingest leader election on a real database: one leader, takeover, loss with the connection."""

from __future__ import annotations

import psycopg
import pytest

from db.locks import INGEST_LEADER_LOCK
from ingest.leader import LeaderElector, libpq_url
from tests.spot_support import wait_until


class Recorder:
    """Start/stop callbacks that note what happened."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def elector(self, url: str) -> LeaderElector:
        return LeaderElector(url, on_elected=lambda: self.events.append("elected"),
                             on_lost=lambda: self.events.append("lost"), retry_seconds=0.1)


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


def test_losing_the_lock_connection_loses_the_leadership(database_url, admin):
    recorder = Recorder()
    elector = recorder.elector(database_url).start()
    try:
        wait_until(lambda: elector.is_leader, message="a leader")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE application_name = 'p2pdash-ingest-leader'")
        wait_until(lambda: recorder.events[:2] == ["elected", "lost"], message="lost")
        wait_until(lambda: recorder.events == ["elected", "lost", "elected"],
                   message="elected again once the database answers")
    finally:
        elector.stop()
