"""The fault matrix's slow rows, shortened (``bench/faults.py`` runs them in full): SIGKILL at random
points of the store's transactions, and a broker restarted again and again."""

from __future__ import annotations

from tests.faults import broker_restarts, kill_storm


def test_sigkill_at_random_points_of_flushes_period_closing_and_outbox_marking_loses_nothing(tmp_path):
    """20 kills (200 in the bench). After each: the file intact, every commit the journal saw present,
    the interrupted flush whole or absent, no period under two seqs, every summary equal to its
    period's data; after a last clean start every period with data is closed."""
    figures = kill_storm(tmp_path / "storm", kills=20, seed=3)
    assert figures["problems"] == [], figures["problems"][:5]
    assert figures["integrity_ok"] == 20
    assert figures["periods_left_unclosed"] == 0
    assert figures["visits_stored"] == figures["visits_journaled"] > 0
    assert figures["last_seq"] == figures["periods_closed"]  # seqs 1..N, one per period, none skipped
    landed = figures["kill_landed_in"]
    for operation in ("flush (s)", "period close (s)", "outbox marking (p)"):  # the kills did hit each one
        assert landed.get(operation, 0) >= 1, landed


def test_a_broker_restarted_every_5_s_loses_no_seq_and_leaks_nothing(tmp_path):
    """15 s of restarts (3 minutes in the bench) while a summary is queued every 0.25 s: the collector
    ends with every seq by itself; the publisher backs off instead of reconnecting at every restart,
    and its file descriptors and memory stay flat."""
    figures = broker_restarts(tmp_path / "restarts", duration_s=15.0, every_s=5.0)
    assert figures["converged"], figures
    assert figures["missing"] == [] and figures["received"] == figures["summaries"] > 50, figures
    assert 2 <= figures["publisher_connects"] <= figures["restarts"] + 1, figures
    fds, rss = figures["publisher_fds"], figures["publisher_rss_kib"]
    assert fds[1] <= fds[0] + 2, figures
    assert rss[1] - rss[0] < 8 * 1024, figures  # KiB
