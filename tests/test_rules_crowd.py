"""``crowd`` hold: a member hidden for a moment still counts, one hidden longer or seen outside does not."""

import pytest
from test_rules_engine import IN, OUT, ZONE, box_at, run

pytestmark = pytest.mark.arm64smoke  # fast, no footage

# three people in the zone (10 fps); track 3 is at (200, 200), tracks 1 and 2 beside it
A, B, C = (140, 200), (170, 200), IN
assert C == (200, 200)


def scene(n, third):
    """Tracks 1 and 2 inside on frames 0..n-1; track 3 at third(i) (a point, or None = not observed)."""
    rows = {}
    for i in range(n):
        rows[i] = [(1, box_at(*A)), (2, box_at(*B))]
        p = third(i)
        if p is not None:
            rows[i].append((3, box_at(*p)))
    return rows


def crowd(**kw):
    return {"type": "crowd", "name": "c", "zone": ZONE, "min_count": 3, "min_duration": 0.3, **kw}


def brief(evs):
    return [(e.frame, e.count, e.track_id, e.end is not None, (e.extra or {}).get("reason")) for e in evs]


def test_member_hidden_for_0_3_s_keeps_the_count():
    # track 3 seen inside at frame 0, not observed on frames 1-3 (0.3 s), back at frame 4
    rows = scene(10, lambda i: None if 1 <= i <= 3 else C)
    evs, _ = run([crowd()], rows)
    assert brief(evs) == [(3, 3, [1, 2, 3], False, None), (9, 3, None, True, "end_of_stream")]
    # the event names the hidden member, its box covers the two visible ones only
    assert evs[0].bbox == [135.0, 180.0, 175.0, 200.0]
    assert evs[0].extra["since"] == 0.0 and evs[0].duration == pytest.approx(0.3)
    # the same footage counting only the tracks observed on each frame (hold 0): the crowd starts at frame 4
    evs, _ = run([crowd(hold=0)], rows)
    assert brief(evs) == [(7, 3, [1, 2, 3], False, None), (9, 3, None, True, "end_of_stream")]


def test_member_hidden_for_1_s_drops_the_count_after_hold():
    # track 3 seen inside at frame 0, not observed on frames 1-10 (1 s), back at frame 11
    rows = scene(16, lambda i: None if 1 <= i <= 10 else C)
    evs, _ = run([crowd()], rows)
    # counted until 0.5 s after it was last seen (frame 5), not at 0.6 s: the episode closes at frame 6
    assert brief(evs) == [(3, 3, [1, 2, 3], False, None), (6, 3, None, True, "below_min_count"),
                          (14, 3, [1, 2, 3], False, None), (15, 3, None, True, "end_of_stream")]
    assert evs[1].duration == pytest.approx(0.6) and evs[1].extra["of"] == evs[0].id
    assert evs[2].extra["since"] == pytest.approx(1.1)
    # a longer hold bridges the whole gap: one episode
    evs, _ = run([crowd(hold=1.0)], rows)
    assert brief(evs) == [(3, 3, [1, 2, 3], False, None), (15, 3, None, True, "end_of_stream")]


def test_member_seen_outside_drops_the_count_at_once():
    # track 3 inside on frames 0-4, seen outside the zone from frame 5 on
    rows = scene(10, lambda i: C if i <= 4 else OUT)
    evs, eng = run([crowd(hold=2.0)], rows)
    assert brief(evs) == [(3, 3, [1, 2, 3], False, None), (5, 3, None, True, "below_min_count")]
    assert eng.rules[0].counts["current"] == 2


def test_event_while_no_member_is_visible_has_no_box():
    # one person seen inside at frame 0, then not observed: counted for 0.5 s, long enough for min_duration 0.3
    rows = {0: [(7, box_at(*IN))]}
    evs, _ = run([crowd(min_count=1)], rows, n=8)
    assert brief(evs) == [(3, 1, [7], False, None), (6, 1, None, True, "below_min_count")]
    assert evs[0].bbox is None


def test_hold_is_validated():
    from pockit.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"rules\[0\]\.hold"):
        parse_config({"name": "x", "sources": [{"id": "a", "uri": "v.mp4"}],
                      "rules": [{**crowd(), "hold": -1}]}, "poc.yaml")
