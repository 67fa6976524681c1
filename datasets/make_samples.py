#!/usr/bin/env python
"""Generate pockit's small sample label sets, deterministically (OpenCV drawings, no third-party images).

    python datasets/make_samples.py            # rewrites datasets/samples/

The label files are written here by hand (plain text templates), independently of pockit's writers,
so tests check pockit's readers against files that pockit did not produce.

samples/
  images/                 6 images 320x240 (people-like figures, cars, bags) from two cameras
  voc/                    Annotations/*.xml + JPEGImages/ (+ classes.txt)
  coco/                   annotations.json + images/
  yolo/                   data.yaml (no 'path': relative to itself), images/{train,val}, labels/{train,val}, classes.txt
  truth.json              the boxes as drawn: {file: [[class, x1, y1, x2, y2], ...]}, classes, sources
  broken/                 one folder per defect, each with one or two images:
    voc_box_outside/      a box crossing the border (clipped) and one fully outside (dropped)
    voc_unknown_class/    an object named 'dog' (not in classes.txt)
    voc_missing_image/    an XML whose image file is absent
    voc_malformed_xml/    one XML with a syntax error on line 9 (plus one good XML)
    voc_zero_area_duplicate/  a zero-width box and an exact duplicate box
    coco_malformed_json/  a JSON syntax error on line 7
    coco_unknown_class/   an annotation with a category_id not in 'categories'
    yolo_empty_label/     an empty .txt label file
    yolo_unknown_class/   class id 7 with 3 names
    yolo_missing_image/   a .txt label whose image does not exist
    yolo_malformed_line/  a row with 3 columns on line 2
    unreadable_image/     VOC set whose .jpg is not an image
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "samples"
W, H = 320, 240
CLASSES = ["person", "car", "bag"]
# file, source, frame, split, objects (class, x1, y1, x2, y2) in integer pixels
SCENES = [
    ("cam1_000000.jpg", "cam1", 0, "train", [("person", 40, 60, 80, 180), ("car", 150, 120, 290, 200)]),
    ("cam1_000050.jpg", "cam1", 50, "train", [("person", 60, 50, 100, 170), ("person", 200, 70, 236, 178), ("bag", 104, 150, 128, 172)]),
    ("cam1_000100.jpg", "cam1", 100, "train", [("car", 10, 130, 170, 215)]),
    ("cam2_000000.jpg", "cam2", 0, "val", [("person", 120, 30, 170, 200), ("bag", 180, 170, 214, 200)]),
    ("cam2_000050.jpg", "cam2", 50, "val", [("person", 20, 80, 52, 176), ("car", 170, 100, 310, 190)]),
    ("cam2_000100.jpg", "cam2", 100, "train", []),  # background only
]
FPS = 10.0


def draw(scene_idx: int, objects) -> np.ndarray:
    rng = np.random.default_rng(1000 + scene_idx)
    img = np.zeros((H, W, 3), np.uint8)
    top, bottom = np.array([200, 170, 140]), np.array([90, 110, 90])  # sky-ish to grass-ish
    for y in range(H):
        img[y] = (top + (bottom - top) * y / (H - 1)).astype(np.uint8)
    for _ in range(6):  # background clutter (not labelled)
        x, y = int(rng.integers(0, W)), int(rng.integers(0, H))
        cv2.circle(img, (x, y), int(rng.integers(3, 10)), tuple(int(v) for v in rng.integers(60, 200, 3)), -1)
    for cls, x1, y1, x2, y2 in objects:
        color = tuple(int(v) for v in rng.integers(20, 120, 3))
        w, h = x2 - x1, y2 - y1
        if cls == "person":
            r = max(3, w // 4)
            cx = (x1 + x2) // 2
            cv2.circle(img, (cx, y1 + r), r, (80, 120, 200), -1)  # head
            cv2.rectangle(img, (x1 + w // 6, y1 + 2 * r), (x2 - w // 6 - 1, y1 + int(h * 0.62)), color, -1)  # torso
            cv2.line(img, (x1 + w // 6, y1 + 2 * r + 4), (x1, y1 + int(h * 0.5)), color, 3)  # arms
            cv2.line(img, (x2 - w // 6 - 1, y1 + 2 * r + 4), (x2 - 1, y1 + int(h * 0.5)), color, 3)
            cv2.line(img, (cx - 2, y1 + int(h * 0.62)), (x1 + w // 5, y2 - 1), (40, 40, 40), 4)  # legs
            cv2.line(img, (cx + 2, y1 + int(h * 0.62)), (x2 - w // 5 - 1, y2 - 1), (40, 40, 40), 4)
        elif cls == "car":
            cv2.rectangle(img, (x1, y1 + h // 3), (x2 - 1, y2 - h // 5), color, -1)
            cv2.rectangle(img, (x1 + w // 4, y1), (x2 - w // 4 - 1, y1 + h // 3), color, -1)
            for wx in (x1 + w // 5, x2 - w // 5 - 1):
                cv2.circle(img, (wx, y2 - h // 5), h // 5, (20, 20, 20), -1)
        elif cls == "bag":
            cv2.rectangle(img, (x1, y1 + h // 3), (x2 - 1, y2 - 1), (30, 60, 150), -1)
            cv2.ellipse(img, ((x1 + x2) // 2, y1 + h // 3), (w // 4, h // 3), 0, 180, 360, (30, 60, 150), 2)
    return img


def voc_xml(file: str, objects, width=W, height=H, source=None, frame=None) -> str:
    objs = "".join(
        f"""  <object>
    <name>{c}</name>
    <pose>Unspecified</pose>
    <truncated>0</truncated>
    <difficult>0</difficult>
    <bndbox>
      <xmin>{x1}</xmin>
      <ymin>{y1}</ymin>
      <xmax>{x2}</xmax>
      <ymax>{y2}</ymax>
    </bndbox>
  </object>
""" for c, x1, y1, x2, y2 in objects)
    pk = f'  <pockit source="{source}" frame="{frame}" timestamp="{frame / FPS!r}" />\n' if source else ""
    return f"""<annotation>
  <folder>JPEGImages</folder>
  <filename>{file}</filename>
  <size>
    <width>{width}</width>
    <height>{height}</height>
    <depth>3</depth>
  </size>
{pk}  <segmented>0</segmented>
{objs}</annotation>
"""


def yolo_rows(objects, classes=CLASSES) -> str:
    rows = []
    for c, x1, y1, x2, y2 in objects:
        cid = classes.index(c) if c in classes else c
        rows.append(f"{cid} {(x1 + x2) / 2 / W:.6f} {(y1 + y2) / 2 / H:.6f} {(x2 - x1) / W:.6f} {(y2 - y1) / H:.6f}")
    return "".join(r + "\n" for r in rows)


def coco_doc(scenes, classes=CLASSES, extra_anns=()) -> dict:
    images, anns = [], []
    for i, (file, source, frame, split, objects) in enumerate(scenes, 1):
        images.append({"id": i, "file_name": file, "width": W, "height": H, "source": source, "frame": frame,
                       "timestamp": frame / FPS})
        for c, x1, y1, x2, y2 in objects:
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": classes.index(c) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    anns += list(extra_anns)
    return {"images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(classes)]}


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def save_image(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    path.write_bytes(buf.tobytes())


def main() -> None:
    if OUT.exists():
        shutil.rmtree(OUT)
    imgs = {s[0]: draw(i, s[4]) for i, s in enumerate(SCENES)}
    for f, img in imgs.items():
        save_image(OUT / "images" / f, img)
    # VOC
    (OUT / "voc" / "JPEGImages").mkdir(parents=True)
    for file, source, frame, split, objects in SCENES:
        write(OUT / "voc" / "Annotations" / file.replace(".jpg", ".xml"), voc_xml(file, objects, source=source, frame=frame))
        shutil.copy(OUT / "images" / file, OUT / "voc" / "JPEGImages" / file)
    write(OUT / "voc" / "classes.txt", "\n".join(CLASSES) + "\n")
    # COCO
    write(OUT / "coco" / "annotations.json", json.dumps(coco_doc(SCENES), indent=1))
    for file, *_ in SCENES:
        (OUT / "coco" / "images").mkdir(parents=True, exist_ok=True)
        shutil.copy(OUT / "images" / file, OUT / "coco" / "images" / file)
    # YOLO (Ultralytics layout)
    for file, source, frame, split, objects in SCENES:
        write(OUT / "yolo" / "labels" / split / file.replace(".jpg", ".txt"), yolo_rows(objects))
        (OUT / "yolo" / "images" / split).mkdir(parents=True, exist_ok=True)
        shutil.copy(OUT / "images" / file, OUT / "yolo" / "images" / split / file)
    write(OUT / "yolo" / "data.yaml", "train: images/train\nval: images/val\nnc: 3\nnames:\n  0: person\n  1: car\n  2: bag\n")
    write(OUT / "yolo" / "classes.txt", "\n".join(CLASSES) + "\n")
    # truth
    truth = {"classes": CLASSES, "width": W, "height": H, "fps": FPS,
             "images": {f: {"source": s, "frame": fr, "split": sp, "boxes": [list(o) for o in objs]}
                        for f, s, fr, sp, objs in SCENES}}
    write(OUT / "truth.json", json.dumps(truth, indent=1))

    # ---- broken variants --------------------------------------------------------------------
    B = OUT / "broken"
    f0, f1 = SCENES[0][0], SCENES[1][0]

    def voc_variant(name, entries, classes=CLASSES, images=(f0,)):
        d = B / name
        for img in images:
            (d / "JPEGImages").mkdir(parents=True, exist_ok=True)
            shutil.copy(OUT / "images" / img, d / "JPEGImages" / img)
        for xml_name, text in entries:
            write(d / "Annotations" / xml_name, text)
        write(d / "classes.txt", "\n".join(classes) + "\n")

    voc_variant("voc_box_outside", [("cam1_000000.xml", voc_xml(f0, [("person", 40, 60, 80, 180), ("car", 250, 120, 400, 260),
                                                                    ("bag", 330, 10, 360, 40)]))])
    voc_variant("voc_unknown_class", [("cam1_000000.xml", voc_xml(f0, [("person", 40, 60, 80, 180), ("dog", 150, 120, 290, 200)]))])
    voc_variant("voc_missing_image", [("cam1_000000.xml", voc_xml(f0, SCENES[0][4])),
                                      ("gone.xml", voc_xml("gone.jpg", [("person", 10, 10, 50, 100)]))])
    bad = voc_xml(f1, SCENES[1][4]).splitlines()
    bad[8] = "  <segmented>0</segmentd>"  # line 9: mismatched tag
    voc_variant("voc_malformed_xml", [("cam1_000000.xml", voc_xml(f0, SCENES[0][4])), ("cam1_000050.xml", "\n".join(bad) + "\n")],
                images=(f0, f1))
    voc_variant("voc_zero_area_duplicate", [("cam1_000000.xml", voc_xml(f0, [("person", 40, 60, 80, 180), ("person", 40, 60, 80, 180),
                                                                            ("car", 150, 120, 150, 200)]))])
    # unreadable image
    d = B / "unreadable_image"
    write(d / "Annotations" / "cam1_000000.xml", voc_xml(f0, SCENES[0][4]))
    write(d / "JPEGImages" / f0, "this is not a JPEG\n")
    write(d / "classes.txt", "\n".join(CLASSES) + "\n")
    # COCO malformed JSON: drop a comma so line 7 fails
    d = B / "coco_malformed_json"
    text = json.dumps(coco_doc(SCENES[:1]), indent=1).splitlines()
    text[5] = text[5].rstrip(",")  # line 6 loses its comma -> error reported at line 7
    write(d / "annotations.json", "\n".join(text) + "\n")
    shutil.copytree(OUT / "coco" / "images", d / "images", ignore=lambda _d, names: [n for n in names if n != f0])
    d = B / "coco_unknown_class"
    doc = coco_doc(SCENES[:1], extra_anns=[{"id": 99, "image_id": 1, "category_id": 17, "bbox": [5, 5, 20, 20], "area": 400, "iscrowd": 0}])
    write(d / "annotations.json", json.dumps(doc, indent=1))
    shutil.copytree(OUT / "coco" / "images", d / "images", ignore=lambda _d, names: [n for n in names if n != f0])

    def yolo_variant(name, labels: dict, images=(f0,)):
        d = B / name
        for img in images:
            (d / "images").mkdir(parents=True, exist_ok=True)
            shutil.copy(OUT / "images" / img, d / "images" / img)
        for lname, text in labels.items():
            write(d / "labels" / lname, text)
        write(d / "classes.txt", "\n".join(CLASSES) + "\n")

    yolo_variant("yolo_empty_label", {"cam1_000000.txt": yolo_rows(SCENES[0][4]), "cam1_000050.txt": ""}, images=(f0, f1))
    yolo_variant("yolo_unknown_class", {"cam1_000000.txt": yolo_rows(SCENES[0][4]) + "7 0.5 0.5 0.1 0.1\n"})
    yolo_variant("yolo_missing_image", {"cam1_000000.txt": yolo_rows(SCENES[0][4]), "ghost.txt": "0 0.5 0.5 0.2 0.4\n"})
    yolo_variant("yolo_malformed_line", {"cam1_000000.txt": "0 0.1875 0.5 0.125 0.5\n1 0.5 0.5\n"})
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
