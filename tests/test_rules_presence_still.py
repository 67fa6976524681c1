"""presence with ``max_motion`` (issue 14, illegal parking): the object must stand still in the zone, not only
stay in it. Exact events on synthetic tracks (10 fps, anchor = bottom centre, boxes 10 x 20 px unless stated)."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_rules_engine import IN, OUT, ZONE, path, run

from pockit.config import ConfigError, load_config

pytestmark = pytest.mark.arm64smoke  # fast, no footage: scripts/arm64-smoke.sh runs them on emulated arm64


def presence(**kw):
    return [dict(type="presence", name="p", zone=ZONE, min_duration=10, **kw)]


def got(evs):
    return [(e.frame, e.track_id, e.duration, e.extra["reason"], e.extra["since"]) for e in evs]


def crawl(speed_px_s, seconds=20.0, x0=110.0):
    """Anchor moving right at ``speed_px_s`` from (x0, 200), one point per frame, all inside ZONE."""
    return [(x0 + speed_px_s * k / 10.0, 200.0) for k in range(int(seconds * 10))]


def test_still_car_alarms_once_at_min_duration():
    evs, _ = run(presence(max_motion=0.1), path(1, [IN] * 250))
    assert got(evs) == [(100, 1, 10.0, "still", 0.0)]
    assert evs[0].extra["max_motion_px"] == 2.0  # 0.1 box heights of a 20 px box
    assert evs[0].zone == "p" and evs[0].bbox == [195.0, 180.0, 205.0, 200.0]


def test_crawling_car_never_alarms_but_it_would_without_max_motion():
    pts = crawl(4.0)  # 0.2 box heights per second, 20 s, 80 px, always in the zone
    assert run(presence(max_motion=0.1), path(1, pts))[0] == []  # 2 px: the stop restarts every 0.5 s
    assert run(presence(max_motion=1.0), path(1, pts))[0] == []  # 1 box height = 20 px: restarts every ~5 s
    assert got(run(presence(), path(1, pts))[0]) == [(100, 1, 10.0, "dwell", 0.0)]  # stay alone: raises
    # > 1 reads as pixels: 40 px crawled in 10 s is within 50 px, so this one is "still"
    assert got(run(presence(max_motion=50), path(1, pts))[0]) == [(100, 1, 10.0, "still", 0.0)]


def test_jitter_of_two_pixels_does_not_restart_the_stop():
    rng = np.random.default_rng(7)
    jit = rng.uniform(-2.0, 2.0, (200, 2))
    pts = [(200 + dx, 200 + dy) for dx, dy in jit]  # box 60 px high: 0.1 = 6 px > any 2 px jitter (<= 5.7 px)
    evs, _ = run(presence(max_motion=0.1), path(1, pts, h=60.0))
    assert got(evs) == [(100, 1, 10.0, "still", 0.0)]
    assert evs[0].extra["max_motion_px"] == 6.0
    # the same jitter against a 2 px limit (20 px box) restarts the stop: no alarm in 20 s
    assert run(presence(max_motion=0.1), path(1, pts))[0] == []


def test_the_stop_restarts_where_the_object_moved_beyond_max_motion():
    # still 4 s, then 3 px right (> 2 px): the 10 s count starts at 4.0 s; 1.5 px (< 2 px) changes nothing
    moved = [IN] * 40 + [(203, 200)] * 160
    assert got(run(presence(max_motion=0.1), path(1, moved))[0]) == [(140, 1, 10.0, "still", 4.0)]
    nudged = [IN] * 40 + [(201.5, 200)] * 160
    assert got(run(presence(max_motion=0.1), path(1, nudged))[0]) == [(100, 1, 10.0, "still", 0.0)]
    # the reference is where the stop began, not the last position: 1.5 px steps every 2 s add up to 3 px
    steps = [IN] * 20 + [(201.5, 200)] * 20 + [(203, 200)] * 160
    assert got(run(presence(max_motion=0.1), path(1, steps))[0]) == [(140, 1, 10.0, "still", 4.0)]


def test_one_event_per_stop_moving_on_re_arms():
    # parks, alarm at 10 s; drives 10 px on at 15 s and parks again: second alarm 10 s later
    two_stops = [IN] * 150 + [(210, 200)] * 150
    evs, _ = run(presence(max_motion=0.1), path(1, two_stops))
    assert got(evs) == [(100, 1, 10.0, "still", 0.0), (250, 1, 10.0, "still", 15.0)]
    # leaves the zone (150 px) for 1 s and comes back: a new stop and a new stay, counted from 13.0 s
    back = [IN] * 120 + [OUT] * 10 + [IN] * 130
    assert got(run(presence(max_motion=0.1), path(1, back))[0]) == [(100, 1, 10.0, "still", 0.0),
                                                                     (230, 1, 10.0, "still", 13.0)]


def test_jitter_across_the_zone_edge_raises_once_per_stop():
    # parked on the zone's edge (x 100): the anchor is out for one frame at 12.0 s; the stay restarts but not the stop
    pts = [(101, 200)] * 120 + [(99, 200)] + [(101, 200)] * 130
    assert got(run(presence(max_motion=0.2), path(1, pts))[0]) == [(100, 1, 10.0, "still", 0.0)]
    assert got(run(presence(), path(1, pts))[0]) == [(100, 1, 10.0, "dwell", 0.0), (221, 1, 10.0, "dwell", 12.1)]
    # out at 5.0 s, before the alarm: it waits for 10 s of the new stay, from 5.1 s
    early = [(101, 200)] * 50 + [(99, 200)] + [(101, 200)] * 150
    assert got(run(presence(max_motion=0.2), path(1, early))[0]) == [(151, 1, 10.0, "still", 5.1)]


def test_still_outside_the_zone_counts_only_from_the_entry():
    # standing still just outside (x 95: ZONE starts at 100), then 6 px in: the stop restarts at the entry
    pts = [(95, 200)] * 50 + [(101, 200)] * 150
    assert got(run(presence(max_motion=0.1), path(1, pts))[0]) == [(150, 1, 10.0, "still", 5.0)]
    # with a limit of 10 px the stop began outside at 0 s, but the stay in the zone began at 5.0 s
    assert got(run(presence(max_motion=10), path(1, pts))[0]) == [(150, 1, 10.0, "still", 5.0)]


def test_detection_gaps_neither_reset_nor_pause_up_to_min_duration():
    # missed for 3 s (frames 30-59) in the same place: the stop goes on, alarm at 10 s as without the gap
    gap3 = [IN] * 30 + [None] * 30 + [IN] * 100
    assert got(run(presence(max_motion=0.1), path(1, gap3))[0]) == [(100, 1, 10.0, "still", 0.0)]
    # missed for 12 s (> min_duration): the stop restarts on its return at 14.0 s, while the stay (as presence
    # without max_motion, which raises on that first frame back) still dates from 0 s
    gap12 = [IN] * 20 + [None] * 120 + [IN] * 150
    assert got(run(presence(max_motion=0.1), path(1, gap12))[0]) == [(240, 1, 10.0, "still", 14.0)]
    assert got(run(presence(), path(1, gap12))[0]) == [(140, 1, 14.0, "dwell", 0.0)]
    # back after 2 s 20 px away: it moved while unseen, the stop restarts at 5.0 s
    moved = [IN] * 30 + [None] * 20 + [(220, 200)] * 150
    assert got(run(presence(max_motion=0.1), path(1, moved))[0]) == [(150, 1, 10.0, "still", 5.0)]


def test_without_max_motion_presence_is_unchanged():
    """max_motion unset: the stay alone (as before the option): crawling and still alike, one event per visit."""
    cases = [([IN] * 250, [(100, 1, 10.0, "dwell", 0.0)]),
             (crawl(4.0), [(100, 1, 10.0, "dwell", 0.0)]),
             ([IN] * 120 + [OUT] * 10 + [IN] * 130, [(100, 1, 10.0, "dwell", 0.0), (230, 1, 10.0, "dwell", 13.0)]),
             ([IN] * 99 + [OUT] + [IN] * 50, [])]
    for pts, want in cases:
        evs, _ = run(presence(), path(1, pts))
        assert got(evs) == want
        assert all(set(e.extra) == {"reason", "since"} for e in evs)
    # two tracks, one still and one crawling, in the same run: with max_motion only the still one raises
    rows = path(1, [IN] * 150)
    for k, p in path(2, crawl(4.0, seconds=15.0, x0=120.0)).items():
        rows.setdefault(k, []).extend(p)
    assert [(e.frame, e.track_id) for e in run(presence(), rows)[0]] == [(100, 1), (100, 2)]
    assert [(e.frame, e.track_id) for e in run(presence(max_motion=0.1), rows)[0]] == [(100, 1)]


@pytest.mark.parametrize("value", [0, -1])
def test_max_motion_must_be_positive(tmp_path, value):
    cfg = {"name": "z", "sources": [{"id": "a", "uri": "rtsp://h/s"}],
           "rules": [{"name": "park", "type": "presence", "min_duration": 10, "max_motion": value,
                      "zone": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9]]}]}
    p = tmp_path / "poc.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "rules[0].max_motion" in str(e.value) and "greater than 0" in str(e.value)
