"""``pockit data`` sub-commands on the sample sets."""
import yaml
from click.testing import CliRunner

from pockit.cli import cli
from pockit.data import read_coco
from pockit.paths import REPO_ROOT

SAMPLES = REPO_ROOT / "datasets" / "samples"


def run(*args):
    return CliRunner().invoke(cli, ["data", *map(str, args)])


def test_check_reports_and_fails_on_dropped(tmp_path):
    r = run("check", SAMPLES / "broken" / "voc_box_outside", "--csv", tmp_path / "issues.csv")
    assert r.exit_code == 1
    assert "box_outside=2" in r.output and "clipped to [250.0, 120.0, 320.0, 240.0]" in r.output
    assert len((tmp_path / "issues.csv").read_text().strip().splitlines()) == 3
    assert run("check", SAMPLES / "voc").exit_code == 0


def test_convert_with_class_map(tmp_path):
    r = run("convert", SAMPLES / "voc", tmp_path / "c", "--to", "coco", "--map", "bag=", "--map", "car=vehicle")
    assert r.exit_code == 0, r.output
    ds = read_coco(tmp_path / "c" / "annotations.json")
    assert ds.class_names == ["person", "vehicle"] and ds.n_boxes == 8


def test_export_and_stats(tmp_path):
    r = run("export", SAMPLES / "coco", tmp_path / "ul", "--val", "0.34", "--chunk-s", "1000")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "ul" / "data.yaml").read_text())
    assert cfg["names"] == {0: "person", 1: "car", 2: "bag"} and cfg["val"] == "images/val"
    r = run("stats", SAMPLES / "yolo", "--html", tmp_path / "h.html")
    assert r.exit_code == 0 and "6 images (1 without boxes), 10 boxes, 3 classes" in r.output
    assert (tmp_path / "h.html").stat().st_size > 1000
    html = (tmp_path / "h.html").read_text()
    # plotly.js embedded (no <script src=...cdn...>): the file opens offline at the customer site
    assert "<script src=" not in html and "plotly.js v" in html


def test_export_resplits_a_train_only_set(tmp_path):
    # a pre-label folder (or a data.yaml whose val = train) has every image in 'train'
    src = tmp_path / "pre"
    from pockit.data import read_yolo, write_yolo

    ds = read_yolo(SAMPLES / "yolo")
    for im in ds:
        im.split = None
    write_yolo(ds, src)
    r = run("export", src, tmp_path / "ul", "--val", "0.34", "--chunk-frames", "10")
    assert r.exit_code == 0, r.output
    assert "lack train or val: splitting again" in r.output
    cfg = yaml.safe_load((tmp_path / "ul" / "data.yaml").read_text())
    assert cfg["val"] == "images/val" and cfg["train"] == "images/train"
    # capture names give source/frame: cam1 and cam2 frames 0, 50, 100 are 6 chunks of 10 frames
    assert len(list((tmp_path / "ul" / "images" / "val").iterdir())) == 2
    # no held-out images: a clear error, not a traceback
    r = run("export", src, tmp_path / "ul2", "--val", "0")
    assert r.exit_code == 1 and "Error: training needs 'train' and 'val' images" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
