"""Fuzzing with hypothesis: random and mutated input to the config loader, every label reader and the
event reader. Each may reject bad input only with its own error type, whose message names the file:

- pockit.config.load_config: ConfigError;
- read_yolo / read_coco / read_voc / read_mot_dataset (and evaluate's load_boxes): pockit.data.LabelError
  (findings in the dataset's report otherwise);
- pockit.core.read_events: the events or a ValueError naming the file and line.

Bounded time: POCKIT_FUZZ_EXAMPLES examples per test (default 60: ~30 s in all on a 2-core machine);
run ``POCKIT_FUZZ_EXAMPLES=3000 pytest tests/test_fuzz.py`` for a long local run.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pockit.config import ConfigError, load_config
from pockit.core import read_events
from pockit.data import LabelError, read_coco, read_mot_dataset, read_voc, read_yolo
from pockit.evaluate.io import load_boxes
from pockit.paths import REPO_ROOT

N = int(os.environ.get("POCKIT_FUZZ_EXAMPLES", "60"))
HUGE_INT = "1" * 5000  # json and yaml refuse integers of more than 4300 digits with a bare ValueError
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), derandomize=N <= 60,
                database=None)

# ---- strategies ------------------------------------------------------------------------------------------------

NASTY_NUMBERS = ["nan", "NaN", "inf", "-inf", "Infinity", "1e400", "-1e400", "1e-400", "0x10", "1_0", "", " ", "١",
                 "½", "0.5", "1", "0", "-1", "+1", "1.", ".5", "9" * 400, "1e308", "-0", "1,5", "true", "null"]
number_text = st.one_of(st.sampled_from(NASTY_NUMBERS), st.integers(-(10**30), 10**30).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr), st.text(max_size=6))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=10), st.sampled_from(NASTY_NUMBERS), st.just(10**400))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
                           max_leaves=8)


def _paths(obj, prefix=()):
    """Every (path to a value) in a nested dict/list, the root included."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


@st.composite
def mutated(draw, base):
    """``base`` with 1-3 random edits: a value replaced by a random JSON value, a key removed or added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if not path:
            doc = draw(json_values) if op == "replace" else doc
            if not isinstance(doc, (dict, list)):
                return doc
            continue
        last = path[-1]
        if op == "replace":
            parent[last] = draw(json_values)
        elif op == "delete":
            del parent[last]
        elif isinstance(parent[last], dict):
            parent[last][draw(st.text(max_size=8))] = draw(json_values)
        elif isinstance(parent[last], list):
            parent[last].append(draw(json_values))
    return doc


def file_bytes(structured):
    """The structured text (UTF-8), sometimes with random bytes spliced in, or random bytes alone."""
    return st.one_of(structured.map(lambda s: s.encode("utf-8", "surrogatepass")),
                     st.tuples(structured, st.binary(max_size=8)).map(lambda t: t[0].encode("utf-8", "surrogatepass") + t[1]),
                     st.binary(max_size=200))


def image(path: Path, size=(64, 48)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size).save(path)


def tmpdir():
    return tempfile.TemporaryDirectory(prefix="pockit-fuzz-")


def assert_names_file(e: Exception, *files: Path) -> None:
    assert any(str(f) in str(e) for f in files), f"message does not name the file: {e}"


# ---- config loader ---------------------------------------------------------------------------------------------

BASE_CONFIG = yaml.safe_load((REPO_ROOT / "demos" / "pets_zone_line.yaml").read_text(encoding="utf-8"))


def check_config(content: bytes) -> None:
    with tmpdir() as d:
        p = Path(d) / "poc.yaml"
        p.write_bytes(content)
        try:
            load_config(p)
        except ConfigError as e:
            assert_names_file(e, p)


@FUZZ
@given(mutated(BASE_CONFIG))
def test_fuzz_config_mutated(doc):
    check_config(yaml.safe_dump(doc, allow_unicode=True).encode("utf-8", "surrogatepass"))
    try:
        load_config(doc) if isinstance(doc, dict) else None
    except ConfigError:
        pass


@FUZZ
@given(file_bytes(st.one_of(st.text(max_size=200), json_values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
                            st.sampled_from([f"name: {HUGE_INT}\n", "a: &a [*a]\n", "[" * 5000, "\t- a\n"]))))
def test_fuzz_config_text(content):
    check_config(content)


# ---- label readers ---------------------------------------------------------------------------------------------

yolo_rows = st.lists(st.lists(number_text, max_size=9).map(" ".join), max_size=6).map("\n".join)
names_text = st.one_of(st.just("person\ncar\n"), st.text(max_size=40))
data_yaml = st.one_of(
    st.just({"path": ".", "train": "images/train", "names": ["person", "car"]}),
    mutated({"path": ".", "train": "images/train", "val": ["images/train"], "names": {0: "person", 1: "car"}}),
    json_values,
).map(lambda v: yaml.safe_dump(v, allow_unicode=True)) | st.sampled_from([f"names: [{HUGE_INT}]", "[" * 5000, "names: &a [*a]"])


@FUZZ
@given(file_bytes(yolo_rows), file_bytes(names_text), st.one_of(st.none(), file_bytes(data_yaml)))
def test_fuzz_yolo(labels, names, data):
    with tmpdir() as d:
        root = Path(d)
        image(root / "images" / "train" / "a.jpg")
        (root / "labels" / "train").mkdir(parents=True)
        (root / "labels" / "train" / "a.txt").write_bytes(labels)
        (root / "classes.txt").write_bytes(names)
        if data is not None:
            (root / "data.yaml").write_bytes(data)
        try:
            ds = read_yolo(root)
        except LabelError as e:
            assert_names_file(e, root)
        else:
            assert all(len(im.xyxy) == len(im.class_ids) for im in ds)


BASE_COCO = {
    "images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 48, "source": "cam", "frame": 3, "timestamp": 0.5,
                "split": "train"}],
    "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 0, "score": 0.9},
                    {"id": 2, "image_id": 1, "category_id": 2, "bbox": [5.5, 6, 10, 10]}],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}],
}
coco_text = (st.one_of(mutated(BASE_COCO), json_values).map(lambda v: json.dumps(v, allow_nan=True))
             | st.sampled_from([f'{{"images": [{HUGE_INT}]}}', "[" * 100000, '{"images": [], "categories": [], "x": 1e999}']))


@FUZZ
@given(file_bytes(coco_text))
def test_fuzz_coco(content):
    with tmpdir() as d:
        p = Path(d) / "annotations.json"
        image(Path(d) / "a.jpg")
        p.write_bytes(content)
        try:
            ds = read_coco(p)
        except LabelError as e:
            assert_names_file(e, p)
        else:
            assert all(len(im.xyxy) == len(im.class_ids) for im in ds)
        for gt in (True, False):  # the evaluator's reader of the same files
            try:
                load_boxes(p, gt=gt, categories={1: 0, 2: 1})
            except LabelError as e:
                assert_names_file(e, p)


def voc_xml(fields: dict) -> str:
    from xml.sax.saxutils import escape, quoteattr

    def t(v):
        return escape(str(v))
    return (f"<annotation><filename>{t(fields['filename'])}</filename>"
            f"<pockit source={quoteattr(str(fields['source']))} frame={quoteattr(str(fields['frame']))} "
            f"timestamp={quoteattr(str(fields['timestamp']))}/>"
            f"<size><width>{t(fields['width'])}</width><height>{t(fields['height'])}</height></size>"
            + "".join(f"<object><name>{t(o[0])}</name><difficult>{t(o[1])}</difficult><bndbox><xmin>{t(o[2])}</xmin>"
                      f"<ymin>{t(o[3])}</ymin><xmax>{t(o[4])}</xmax><ymax>{t(o[5])}</ymax></bndbox></object>" for o in fields["objects"])
            + "</annotation>")


voc_fields = st.fixed_dictionaries({
    "filename": st.one_of(st.just("a.jpg"), st.text(max_size=12)), "source": st.text(max_size=6),
    "frame": number_text, "timestamp": number_text, "width": number_text, "height": number_text,
    "objects": st.lists(st.tuples(st.one_of(st.just("person"), st.text(max_size=6)), number_text, number_text, number_text,
                                  number_text, number_text), max_size=4)})
ENTITY_XML = ['<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><annotation><filename>&e;</filename></annotation>',
              '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e SYSTEM "file:///etc/passwd">]><annotation>&e;</annotation>',
              '<?xml version="1.0" encoding="nope"?><annotation/>', "<annotation>", "<other/>", ""]
voc_text = st.one_of(voc_fields.map(voc_xml), st.sampled_from(ENTITY_XML), st.text(max_size=80))


@FUZZ
@given(st.lists(file_bytes(voc_text), min_size=1, max_size=3), st.one_of(st.none(), file_bytes(names_text)))
def test_fuzz_voc(xmls, names):
    with tmpdir() as d:
        root = Path(d)
        image(root / "a.jpg")
        for i, x in enumerate(xmls):
            (root / f"a{i}.xml").write_bytes(x)
        if names is not None:
            (root / "classes.txt").write_bytes(names)
        try:
            ds = read_voc(root)
        except LabelError as e:
            assert_names_file(e, root)
        else:
            assert all(len(im.xyxy) == len(im.class_ids) for im in ds)


seqinfo = st.builds(lambda name, imdir, fps, w, h: f"[Sequence]\nname={name}\nimDir={imdir}\nframeRate={fps}\nseqLength=2\n"
                    f"imWidth={w}\nimHeight={h}\nimExt=.jpg\n",
                    st.text(max_size=6), st.one_of(st.just("img1"), st.text(max_size=6)), number_text, number_text, number_text)
mot_rows = st.lists(st.lists(st.one_of(number_text, st.sampled_from(["1", "2", "10", "-1", "0.5"])), max_size=11).map(",".join),
                    max_size=6).map("\n".join)


@FUZZ
@given(st.one_of(st.none(), file_bytes(st.one_of(seqinfo, st.text(max_size=60)))), file_bytes(mot_rows))
def test_fuzz_mot(ini, gt):
    with tmpdir() as d:
        seq = Path(d) / "SEQ"
        image(seq / "img1" / "000001.jpg")
        (seq / "gt").mkdir()
        (seq / "gt" / "gt.txt").write_bytes(gt)
        if ini is not None:
            (seq / "seqinfo.ini").write_bytes(ini)
        try:
            ds = read_mot_dataset(seq)
        except LabelError as e:
            assert_names_file(e, seq)
        else:
            assert all(len(im.xyxy) == len(im.class_ids) for im in ds)
        try:
            load_boxes(seq / "gt" / "gt.txt", gt=True)
        except LabelError as e:
            assert_names_file(e, seq / "gt" / "gt.txt")


# ---- event reader ----------------------------------------------------------------------------------------------

BASE_EVENT = {"rule": "gate", "type": "zone_enter", "source": "cam1", "time": 1.5, "frame": 12, "track_id": 3,
              "class": "person", "bbox": [1, 2, 30, 40], "zone": "z", "id": "abc"}
event_lines = st.lists(st.one_of(st.just(json.dumps(BASE_EVENT)), mutated(BASE_EVENT).map(lambda v: json.dumps(v, allow_nan=True)),
                                 st.text(max_size=40), st.just(f'{{"rule": "r", "type": "t", "time": {HUGE_INT}}}'),
                                 st.just("[" * 100000)), max_size=5).map("\n".join)


@FUZZ
@given(file_bytes(event_lines))
def test_fuzz_read_events(content):
    with tmpdir() as d:
        p = Path(d) / "events.jsonl"
        p.write_bytes(content)
        try:
            events = read_events(p)
        except UnicodeDecodeError:  # a ValueError, but without the file name: not acceptable
            raise
        except ValueError as e:
            assert_names_file(e, p)
        else:
            assert all(isinstance(ev.to_dict(), dict) for ev in events)

