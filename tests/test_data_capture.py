"""Frame capture on real footage (exact kept/skipped counts) and pre-labelling."""
import json

import cv2
import numpy as np
import pandas as pd
import pytest

from pockit.core import Detections
from pockit.data import read_coco, read_yolo
from pockit.data.capture import capture, prelabel, read_capture


@pytest.fixture(scope="module")
def aboda(shared_data):
    return shared_data / "video" / "ABODA_video4.avi"


def test_interval_only(aboda, tmp_path):
    r = capture(aboda, tmp_path, every_s=1.0, dedup_hamming=None, progress=False)
    # 1169 frames at 29.97 fps -> sample points at frames 0, 30, 60, ... (one per second)
    assert (r.decoded, r.kept) == (1169, 39)
    assert r.skipped == {"interval": 1130, "no_motion": 0, "duplicate": 0, "confident": 0}
    assert list(r.manifest["frame"][:3]) == [0, 30, 60]


def test_dedup_and_motion_on_real_video(aboda, tmp_path):
    r = capture(aboda, tmp_path, every_s=1.0, motion=0.005, dedup_hamming=4, progress=False)
    assert r.kept == 8
    assert r.skipped == {"interval": 1130, "no_motion": 13, "duplicate": 18, "confident": 0}
    assert list(r.manifest["frame"]) == [0, 330, 360, 390, 600, 630, 960, 1050]
    m = pd.read_csv(tmp_path / "manifest.csv", dtype={"phash": str})
    assert list(m["file"]) == [f"ABODA_video4_{f:06d}.jpg" for f in r.manifest["frame"]]
    assert m["timestamp"].iloc[1] == pytest.approx(330 / 29.97, abs=1e-3)
    assert all((tmp_path / f).exists() for f in m["file"]) and len(list(tmp_path.glob("*.jpg"))) == 8
    # kept frames are pairwise more than 4 bits apart
    hs = [int(h, 16) for h in m["phash"]]
    assert min(bin(a ^ b).count("1") for i, a in enumerate(hs) for b in hs[i + 1:]) > 4
    saved = json.loads((tmp_path / "capture.json").read_text())
    assert saved["kept"] == 8 and saved["skipped"]["duplicate"] == 18
    # a stricter threshold keeps fewer
    r6 = capture(aboda, tmp_path / "b", every_s=1.0, dedup_hamming=6, progress=False)
    assert (r6.kept, r6.skipped["duplicate"]) == (2, 37)
    ds = read_capture(tmp_path)
    assert len(ds) == 8 and ds.images[1].frame == 330 and ds.images[1].source == "ABODA_video4"


class FakeDetector:
    """Returns one box per image whose score is the image's mean red level / 255."""

    conf = 0.1
    class_names = {0: "person"}

    def detect(self, images):
        return [Detections(xyxy=[[10, 10, 50, 90]], scores=[img[..., 2].mean() / 255], class_ids=[0], class_names=self.class_names)
                for img in images]


def test_unsure_band_with_folder_source(tmp_path):
    src = tmp_path / "frames"
    src.mkdir()
    levels = [20, 60, 100, 140, 200]  # scores 0.078, 0.235, 0.392, 0.549, 0.784
    for i, lv in enumerate(levels):
        img = np.zeros((120, 160, 3), np.uint8)
        img[..., 2] = lv
        img[i * 20:(i + 1) * 20, :, 1] = 255  # make frames differ for the perceptual hash
        cv2.imwrite(str(src / f"{i:03d}.png"), img)
    r = capture(src, tmp_path / "out", unsure=(0.2, 0.6), detector=FakeDetector(), dedup_hamming=None, progress=False)
    assert r.kept == 3 and r.skipped["confident"] == 2
    assert [json.loads(s) for s in r.manifest["unsure_scores"]] == [[0.2353], [0.3922], [0.549]]
    with pytest.raises(ValueError, match="conf=0.05"):
        d = FakeDetector()
        d.conf = 0.3
        capture(src, tmp_path / "x", unsure=(0.05, 0.5), detector=d, progress=False)


def test_prelabel_writes_reviewable_labels(tmp_path, aboda):
    capture(aboda, tmp_path / "cap", every_s=10.0, dedup_hamming=None, progress=False)
    ds = prelabel(tmp_path / "cap", FakeDetector(), tmp_path / "yolo", fmt="yolo", progress=False)
    assert len(ds) == 4 and ds.n_boxes == 4
    back = read_yolo(tmp_path / "yolo")
    assert back.class_names == ["person"] and back.n_boxes == 4
    np.testing.assert_allclose(back.images[0].xyxy, [[10, 10, 50, 90]], atol=1e-3)
    prelabel(tmp_path / "cap", FakeDetector(), tmp_path / "coco", fmt="coco", progress=False)
    coco = read_coco(tmp_path / "coco" / "annotations.json")
    assert coco.n_boxes == 4 and coco.images[0].scores is not None
    assert coco.images[2].source == "ABODA_video4" and coco.images[2].frame == 600
