"""events.jsonl as a killed run leaves it: a torn last line is skipped (counted, warned), a bad line
elsewhere is still an error naming file and line, and `pockit eval events` reads such a file."""
import json
import logging

import pytest
from click.testing import CliRunner

from pockit.cli import cli
from pockit.core import Event, read_events, write_events


def _events(n):
    return [Event(rule="gate", type="line_crossing", source="cam", time=float(i), frame=10 * i, track_id=i,
                  id=f"e{i}") for i in range(n)]


def test_torn_last_line_is_skipped_counted_and_warned(tmp_path, caplog):
    p = write_events(_events(3), tmp_path / "events.jsonl")
    full = p.read_text()
    with open(p, "a", encoding="utf-8") as f:
        f.write(_events(4)[3].to_json()[:25])  # killed in the middle of a write
    with caplog.at_level(logging.WARNING, logger="pockit.core.events"):
        evs = read_events(p)
    assert [e.id for e in evs] == ["e0", "e1", "e2"]
    assert len(evs.skipped) == 1 and evs.skipped[0][0] == 4
    assert f"{p}:4: last line is not a complete event record" in caplog.text
    # a last line that is valid JSON but not an event (no rule) is skipped the same way
    p.write_text(full + json.dumps({"type": "zone_enter"}) + "\n")
    evs = read_events(p)
    assert len(evs) == 3 and evs.skipped[0][0] == 4 and "lacks required field 'rule'" in evs.skipped[0][1]
    p.write_text(full + "[1, 2]\n\n")
    assert len(read_events(p)) == 3 and read_events(p).skipped[0][0] == 4
    assert read_events(write_events(_events(2), tmp_path / "ok.jsonl")).skipped == []


def test_bad_line_before_the_end_is_still_an_error(tmp_path):
    lines = [e.to_json() for e in _events(3)]
    lines[1] = lines[1][:20]
    p = tmp_path / "events.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=rf"{p}:2: bad event record"):
        read_events(p)


def test_eval_events_reads_a_torn_file(tmp_path):
    gt = write_events(_events(3), tmp_path / "gt.jsonl")
    pred = write_events(_events(3), tmp_path / "run" / "events.jsonl")
    with open(pred, "a", encoding="utf-8") as f:
        f.write('{"rule": "gate", "ty')
    res = CliRunner().invoke(cli, ["eval", "events", "--pred", str(pred), "--gt", str(gt), "--hours", "1",
                                   "-o", str(tmp_path / "ev.json")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "ev.json").read_text())
    assert (rep["totals"]["pred"], rep["totals"]["tp"], rep["totals"]["fp"]) == (3, 3, 0)
