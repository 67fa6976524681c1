"""Event records: the JSON form written to events.jsonl."""
import json

import numpy as np

from pockit.core.events import Event


def test_to_dict_is_asdict_with_class_last_and_empty_fields_left_out():
    """to_dict (hand-written for speed) gives exactly the record the dataclasses.asdict version gave, and copies
    the mutable values."""
    from dataclasses import asdict

    def reference(ev):
        d = asdict(ev)
        d["class"] = d.pop("class_name")
        if d["bbox"] is not None:
            d["bbox"] = [round(float(v), 2) for v in d["bbox"]]
        d["time"] = round(float(d["time"]), 4)
        return {k: v for k, v in d.items() if v is not None and v != {}}

    evs = [Event(rule="r", type="zone_enter", source="cam", time=1.234567, frame=3),
           Event(rule="l", type="loitering", source="c2", time=np.float64(12.3456789), frame=308, track_id=[3, 4],
                 class_name="person", bbox=[np.float32(10.123), 20.5, 60.25, 180.756], zone="z", duration=5.2,
                 count=0, extra={"box": "b1", "nested": {"a": [1, (2, 3)]}, "none": None}),
           Event(rule="c", type="crowd", source="s", time=5, frame=0, end=9.5, extra={})]
    for ev in evs:
        got = ev.to_dict()
        assert got == reference(ev) and list(got) == list(reference(ev))
        assert json.loads(ev.to_json()) == json.loads(json.dumps(reference(ev)))
    got = evs[1].to_dict()
    got["extra"]["nested"]["a"].append(9)
    got["track_id"].append(5)
    assert evs[1].extra["nested"]["a"] == [1, (2, 3)] and evs[1].track_id == [3, 4]
