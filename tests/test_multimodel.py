"""Several models in one PoC: class ids/names, attachment of parts to their host, attributes through the tracker."""
from typing import ClassVar

import numpy as np
import pytest

import pockit
from pockit.config import ConfigError, ExtraModelConfig, ModelConfig, load_config
from pockit.core import Detections
from pockit.inference.multi import MultiDetector, attach


class Fake:
    """A detector returning fixed detections per call (one list entry per image)."""

    def __init__(self, names, per_image, data=None):
        self.class_names = dict(names)
        self.per_image = per_image
        self.data = data or {}
        self.calls = []
        self.last_timings = {"preprocess": 0.001, "inference": 0.002, "postprocess": 0.0}

    def detect(self, images):
        self.calls.append(len(images))
        out = []
        for _ in images:
            boxes, scores, cls = self.per_image
            n = len(boxes)
            out.append(Detections(boxes, scores, cls, class_names=self.class_names,
                                  data={k: np.asarray(v)[:n] for k, v in self.data.items()}))
        return out


def _ex(name, attach_to=None, sources=None):
    return ExtraModelConfig(name=name, model=ModelConfig(path="x.onnx"), attach_to=attach_to, sources=sources)


def test_attach_rules():
    hosts = np.array([[0, 0, 100, 200], [50, 0, 120, 200], [300, 300, 400, 400]], np.float32)
    ok = np.array([True, True, False])
    parts = Detections(np.array([[10, 10, 30, 30],      # only in host 0
                                 [60, 10, 90, 40],      # centre in 0 and 1, fully covered by both: smaller = 1
                                 [70, 10, 95, 30],      # also host 1, lower score: dropped (-2)
                                 [310, 310, 320, 320],  # host 2 is not a host class: alone (-1)
                                 [500, 500, 510, 510]], np.float32),  # in nothing: -1
                       np.array([0.9, 0.8, 0.5, 0.9, 0.9], np.float32), np.zeros(5, np.int32))
    assert attach(hosts, ok, parts).tolist() == [0, 1, -2, -1, -1]
    assert attach(hosts, np.zeros(3, bool), parts).tolist() == [-1] * 5


def test_class_ids_names_and_attributes():
    main = Fake({0: "person", 1: "car"}, ([[0, 0, 100, 200], [200, 0, 300, 100]], [0.9, 0.8], [0, 1]))
    ppe = Fake({0: "With Helmet", 1: "Without Helmet"},
               ([[30, 5, 60, 30], [400, 400, 420, 420]], [0.7, 0.6], [0, 1]),
               data={"emb": np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)})
    coco = Fake({0: "person", 2: "car", 67: "cell phone"}, ([[210, 10, 220, 20]], [0.5], [2]))
    md = MultiDetector(main, [(_ex("ppe", ["person"]), ppe), (_ex("coco"), coco)])
    names = md.class_names
    assert names[0] == "person" and names[1000] == "With Helmet" and names[1001] == "Without Helmet"
    assert names[2000] == "coco.person" and names[2002] == "coco.car" and names[2067] == "cell phone"
    (d,) = md.detect([np.zeros((480, 640, 3), np.uint8)])
    assert d.class_ids.tolist() == [0, 1, 1001, 2002]  # person, car, the lone bare head, the coco car
    assert d.data["ppe"].tolist() == ["With Helmet", "", "Without Helmet", ""]
    np.testing.assert_allclose(d.data["ppe.score"], [0.7, np.nan, 0.6, np.nan])
    np.testing.assert_allclose(d.data["ppe.xyxy"][0], [30, 5, 60, 30])
    np.testing.assert_allclose(d.data["ppe.emb"][0], [1, 0])
    assert np.isnan(d.data["ppe.emb"][1]).all() and np.isnan(d.data["ppe.emb"][3]).all()
    np.testing.assert_allclose(d.data["ppe.emb"][2], [0, 1])
    assert set(md.last_timings) == {"preprocess", "inference", "postprocess"}
    assert md.last_timings["inference"] == pytest.approx(0.006)


def test_sources_filter_and_keys_kept_when_nothing_found():
    main = Fake({0: "person"}, ([[0, 0, 100, 200]], [0.9], [0]))
    face = Fake({0: "face"}, ([[20, 10, 40, 40]], [0.8], [0]), data={"embedding": np.ones((1, 4), np.float32)})
    md = MultiDetector(main, [(_ex("face", [0], sources=["door"]), face)])
    out = md.detect([np.zeros((10, 10, 3), np.uint8)] * 3, sources=["door", "yard", "door"])
    assert face.calls == [2]
    assert [o.data["face"].tolist() for o in out] == [["face"], [""], ["face"]]
    assert out[1].data["face.embedding"].shape == (1, 4) and np.isnan(out[1].data["face.embedding"]).all()
    merged = Detections.merge(out)
    assert set(merged.data) == {"face", "face.score", "face.xyxy", "face.embedding"}


def test_attach_to_unknown_class_names_the_model():
    main = Fake({0: "Normal", 1: "Fall"}, ([], [], []))
    with pytest.raises(ValueError, match=r"^extra_models\[0\]\.attach_to: 'person' is not a class of the main model; "
                                         r"its classes are 0=Normal, 1=Fall$"):
        MultiDetector(main, [(_ex("ppe", ["person"]), Fake({0: "x"}, ([], [], [])))])


def test_config_errors_name_the_field(tmp_path):
    p = tmp_path / "poc.yaml"
    p.write_text("sources: [{id: cam, uri: a.mp4}]\nextra_models:\n  - name: PPE\n    model: {path: x.onnx}\n")
    with pytest.raises(ConfigError, match=r"extra_models\[0\]\.name \(line 3\)"):
        load_config(p)
    p.write_text("sources: [{id: cam, uri: a.mp4}]\nextra_models:\n  - name: ppe\n    model: {path: x.onnx}\n"
                 "    sources: [door]\n")
    with pytest.raises(ConfigError, match="extra_models 'ppe' names unknown source 'door'"):
        load_config(p)


def test_pipeline_carries_attributes_to_the_rules(tud_campus, monkeypatch, tmp_path):
    """End to end: a part model attached to persons; every tracked person the rules see carries the attribute."""
    from pockit.inference import load_detector
    from pockit.rules import RuleEngine

    person = load_detector("person-yolov8s", conf=0.3)

    class Heads:
        class_names: ClassVar[dict] = {0: "With Helmet"}

        def detect(self, images):
            out = []
            for d in person.detect(images):  # a 'helmet' at the top of every person box
                x1, y1, x2, y2 = d.xyxy.T
                h = (y2 - y1) * 0.15
                out.append(Detections(np.stack([x1, y1, x2, y1 + h], 1), d.scores, np.zeros(len(d), np.int32),
                                      class_names=self.class_names))
            return out

    seen = []
    orig = RuleEngine.update

    def spy(self, frame, dets, timestamp, index):
        seen.append((len(dets), dets.data.get("ppe")))
        return orig(self, frame, dets, timestamp, index)

    monkeypatch.setattr(RuleEngine, "update", spy)
    cfg = {"name": "mm", "sources": [{"id": "campus", "uri": str(tud_campus), "max_frames": 12}],
           "model": {"path": "person-yolov8s", "conf": 0.3},
           "extra_models": [{"name": "ppe", "model": {"path": "person-yolov8s"}, "attach_to": ["Normal", "Fall"]}],
           "rules": [{"name": "z", "type": "zone_enter", "zone": [[0, 0], [640, 0], [640, 480], [0, 480]]}],
           "pipeline": {"workers": 0}}
    md = MultiDetector(person, [(ExtraModelConfig(**cfg["extra_models"][0]), Heads())])
    s = pockit.run(cfg, run_dir=tmp_path / "run", detector=md, progress=False)
    assert s.frames == 12 and not s.errors
    tracked = [(n, a) for n, a in seen if n]
    assert len(tracked) >= 8
    # every tracked person carries the helmet of its own box (the tracker keeps the matched detection's data)
    assert all(a is not None and list(a) == ["With Helmet"] * n for n, a in tracked)
