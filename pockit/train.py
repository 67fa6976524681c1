"""Fine-tune a YOLO detector on a pockit Dataset with Ultralytics, offline, and prove it got better.

:func:`finetune` exports the dataset (train/val split, classes lined up with the model), trains with
settings that never reach the internet (``YOLO_OFFLINE=1``, no plots so no font download, AMP off on
CPU so no AMP-check download), exports the base and the best weights to ONNX, and scores both on the
held-out split with pockit's ONNX runtime and :func:`pockit.evaluate.detection.evaluate_detections`
(the metrics of ``pockit eval``). Needs the ``[ml]`` extra (torch + ultralytics); imported lazily.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import click
import numpy as np

from .core import Detections
from .data import Dataset, export_ultralytics, leakage, map_to_model, split

log = logging.getLogger(__name__)


@dataclass
class FinetuneResult:
    """run_dir (Ultralytics run folder), best_pt, onnx (best weights as ONNX), base_onnx, data_yaml,
    before/after (:class:`~pockit.evaluate.detection.DetectionReport` on the held-out split, or None)."""

    run_dir: Path
    best_pt: Path
    onnx: Path | None
    base_onnx: Path | None
    data_yaml: Path
    class_names: list[str]
    before: Any = None
    after: Any = None
    settings: dict = field(default_factory=dict)
    train_s: float = 0.0

    def metrics(self):
        """pandas DataFrame: one row per (model, class) with mAP50, mAP50-95, precision, recall at the threshold."""
        import pandas as pd

        rows = []
        for tag, rep in (("before", self.before), ("after", self.after)):
            if rep is None:
                continue
            t = rep.totals
            rows.append({"model": tag, "class": "all", "mAP50": rep.map50, "mAP50-95": rep.map50_95,
                         "precision": t["precision"], "recall": t["recall"], "tp": t["tp"], "fp": t["fp"], "fn": t["fn"]})
            for r in rep.per_class:
                if r["gt"] == 0 and r["pred"] == 0:
                    continue
                rows.append({"model": tag, "class": r["class"], "mAP50": r["ap50"], "mAP50-95": r["ap50_95"],
                             "precision": r["precision"], "recall": r["recall"], "tp": r["tp"], "fp": r["fp"], "fn": r["fn"]})
        return pd.DataFrame(rows)

    def text(self) -> str:
        lines = [f"fine-tune run: {self.run_dir} ({self.train_s:.0f} s training)", f"best weights: {self.best_pt}",
                 f"ONNX: {self.onnx}"]
        if self.before is not None or self.after is not None:
            conf = (self.after or self.before).conf
            lines.append(f"held-out split ({(self.after or self.before).images} images, precision/recall at conf {conf}):")
            lines.append(self.metrics().round(3).to_string(index=False))
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"run_dir": str(self.run_dir), "best_pt": str(self.best_pt), "onnx": str(self.onnx) if self.onnx else None,
                "base_onnx": str(self.base_onnx) if self.base_onnx else None, "data_yaml": str(self.data_yaml),
                "class_names": self.class_names, "train_s": self.train_s, "settings": self.settings,
                "before": self.before.to_dict() if self.before is not None else None,
                "after": self.after.to_dict() if self.after is not None else None}


def _ultralytics():
    os.environ["YOLO_OFFLINE"] = "1"  # no hub, no GitHub asset checks
    os.environ.setdefault("YOLO_VERBOSE", "False")
    try:
        import ultralytics  # noqa: F401
        from ultralytics import YOLO
    except ImportError as e:
        raise ImportError("fine-tuning needs the [ml] extra: pip install 'pockit[ml]' (torch + ultralytics)") from e
    return YOLO


@contextlib.contextmanager
def _quiet_ultralytics(quiet: bool):
    lg = logging.getLogger("ultralytics")
    old = lg.level
    if quiet:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        lg.setLevel(old)


def export_onnx(weights: str | Path, imgsz: int, out: str | Path | None = None) -> Path:
    """Export Ultralytics weights to ONNX (static 1x3ximgszximgsz, no NMS: what pockit's ONNX backend reads)."""
    from .deploy.export import export_onnx as _export  # one export path (never writes beside the weights)

    with _quiet_ultralytics(True):
        return _export(weights, out, imgsz=imgsz, simplify=False, dynamic=False)


def evaluate_model(model: str | Path, dataset: Dataset, *, split_name: str | None = "val", imgsz: int = 640, conf: float = 0.25,
                   iou: float = 0.5, class_merge: Mapping[str, str] | None = None, batch: int = 4, progress: bool = True):
    """Score a model on a split of ``dataset`` with pockit's runtime: mAP50, mAP50-95, per-class P/R at ``conf``.

    class_merge: model class name -> dataset class name, for models whose classes differ from the
    dataset's (e.g. {'Normal': 'person', 'Fall': 'person'}); unmapped model classes must match a
    dataset class by name or their boxes are ignored. Predictions use conf=0.001 (for mAP).
    """
    import cv2
    from tqdm import tqdm

    from .evaluate.detection import evaluate_detections
    from .inference import load_detector

    ds = dataset.subset(split_name) if split_name else dataset
    if not len(ds):
        raise ValueError(f"dataset has no images in split {split_name!r}")
    det = load_detector(str(model), imgsz=imgsz, conf=0.001, iou=0.7, max_det=300)
    names = ds.class_names
    merge = dict(class_merge or {})
    lut = {mid: names.index(merge.get(mn, mn)) for mid, mn in det.class_names.items() if merge.get(mn, mn) in names}
    gt, pred = {}, {}
    ims = ds.images
    for i in tqdm(range(0, len(ims), batch), desc=f"evaluate {Path(str(model)).name}", unit="batch", disable=not progress,
                  leave=False):
        chunk = ims[i:i + batch]
        frames = [cv2.imread(str(im.path)) for im in chunk]
        for im, img, d in zip(chunk, frames, det.detect(frames)):
            keep = np.array([int(c) in lut for c in d.class_ids], bool)
            d = d.filter(keep) if len(d) else d
            cids = np.array([lut[int(c)] for c in d.class_ids], np.int32)
            pred[im.file] = Detections(xyxy=d.xyxy, scores=d.scores, class_ids=cids, class_names=dict(enumerate(names)))
            gt[im.file] = ds.detections(im)
    return evaluate_detections(gt, pred, class_names=names, conf=conf, iou=iou)


def extend_head(weights: str | Path, new_classes: list[str], out: str | Path) -> Path:
    """Write a copy of Ultralytics detection ``weights`` whose head predicts its own classes followed by ``new_classes``.

    Every layer is copied; in the class outputs of the head (tensors whose first dimension is the old number of
    classes) the rows of the old classes are copied and the new rows keep Ultralytics' fresh initialisation, so the
    extended model detects the old classes as before and the new ones not at all until it is trained.
    """
    import torch
    from ultralytics.nn.tasks import DetectionModel

    YOLO = _ultralytics()
    base = YOLO(str(weights))
    old = base.model.float()
    names = [str(old.names[i]) for i in sorted(old.names)]
    clash = [n for n in new_classes if n in names]
    if clash or not new_classes or len(set(new_classes)) != len(new_classes):
        raise ValueError(f"new classes {list(new_classes)} must be distinct and new to the model's classes {names}")
    nc_old, nc = len(names), len(names) + len(new_classes)
    with torch.random.fork_rng():  # the new rows' initialisation is seeded: the same file every time
        torch.manual_seed(0)
        new = DetectionModel(dict(old.yaml), nc=nc, verbose=False)
    sd_old, sd_new = old.state_dict(), new.state_dict()
    extended = 0
    with torch.no_grad():
        for k, v in sd_new.items():
            o = sd_old.get(k)
            if o is None:
                raise ValueError(f"{weights}: layer {k} missing from the base weights; cannot extend its head")
            if o.shape == v.shape:
                v.copy_(o)
            elif o.shape[0] == nc_old and v.shape[0] == nc and o.shape[1:] == v.shape[1:]:
                v[:nc_old].copy_(o)
                extended += 1
            else:
                raise ValueError(f"{weights}: layer {k} has shape {tuple(o.shape)}, expected {tuple(v.shape)}")
    if not extended:
        raise ValueError(f"{weights}: no class output found in the head to extend")
    new.names = dict(enumerate(names + list(new_classes)))
    new.args = getattr(old, "args", {})
    base.model = new
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    base.save(str(out))
    return out


def finetune(dataset: Dataset, base_model: str | Path = "person-yolov8s-pt", epochs: int = 10, imgsz: int = 640, batch: int = 8,
             device: str = "cpu", *, out_dir: str | Path = "runs/finetune", name: str | None = None,
             class_map: Mapping[str, str | None] | None = None, add_classes: bool = False, val: float = 0.2, chunk_s: float = 60.0, freeze: int | None = None,
             lr0: float | None = 2e-4, optimizer: str = "AdamW", warmup_epochs: float | None = 0.0, seed: int = 0,
             workers: int = 0, export: bool = True, evaluate: bool = True, eval_class_merge: Mapping[str, str] | None = None,
             conf: float = 0.25, iou: float = 0.5, progress: bool = True, images: str = "link", **train_kwargs: Any) -> FinetuneResult:
    """Fine-tune ``base_model`` (a pockit model name or a .pt file) on ``dataset``; return the run.

    Classes: when ``class_map`` is given or every dataset class is a model class (by name), labels
    take the model's class ids and the detection head is kept (the fastest, safest fine-tune);
    otherwise Ultralytics rebuilds the head for the dataset's classes (needs more epochs). ``add_classes``: dataset
    classes that are neither in ``class_map`` nor model classes are added to the model (:func:`extend_head`: the old
    classes keep their ids and weights, the new ones follow them); "before" is the base model, which scores 0 on them.
    Images without a split are split (``val`` fraction, ``chunk_s`` groups, no leakage) first.
    freeze: freeze the first n layers (10 = YOLOv8 backbone; faster on CPU). Defaults are for
    fine-tuning pretrained weights (AdamW, lr0 2e-4, no warm-up): Ultralytics' 'auto' optimizer
    picks lr ~2e-3 for short runs, which wrecked the pretrained person detector in one epoch. Extra keyword
    arguments go to ``YOLO.train`` (e.g. mosaic=0, patience=5). Evaluation (before = base model,
    after = best weights, both as ONNX through pockit's runtime) runs on the 'val' split.
    """
    YOLO = _ultralytics()
    from .inference import resolve_model

    base_pt = Path(resolve_model(str(base_model)))
    if base_pt.suffix != ".pt":
        raise ValueError(f"base_model must be Ultralytics .pt weights to train, got {base_pt}; "
                         "for pockit's person detector use 'person-yolov8s-pt'")
    base = YOLO(str(base_pt))
    model_names = [str(base.names[i]) for i in sorted(base.names)]
    name = name or time.strftime("ft_%Y%m%d_%H%M%S")
    run_root = Path(out_dir).resolve()
    added: list[str] = []
    if add_classes:
        from .resolve import find_class

        known = dict(enumerate(model_names))
        added = [n for n in dataset.class_names if n not in (class_map or {}) and find_class(n, known) is None]
        if added:
            base = YOLO(str(extend_head(base_pt, added, run_root / name / "base_extended.pt")))
            model_names += added
            class_map = dict(class_map or {})
    if class_map is not None or set(dataset.class_names) <= set(model_names):
        ds = map_to_model(dataset, model_names, class_map, drop_unknown=False)
        keep_head = True
    else:
        ds = dataset.copy()
        keep_head = False
        log.warning("dataset classes %s are not all model classes %s: the detection head is retrained for %d classes",
                    dataset.class_names, model_names, len(ds.class_names))
    if any(im.split is None for im in ds.images):
        ds = split(ds, val=val, chunk_s=chunk_s, seed=seed)
        leaks = leakage(ds, chunk_s=chunk_s)
        if leaks:
            raise RuntimeError(f"split leaked groups {leaks[:3]}")
    data_dir = run_root / name / "data"
    data_yaml = export_ultralytics(ds, data_dir, images=images)
    cpu = str(device).lower() == "cpu"
    args = dict(data=str(data_yaml), epochs=int(epochs), imgsz=int(imgsz), batch=int(batch), device=device, workers=workers,
                project=str(run_root / name), name="train", exist_ok=True, plots=False, amp=not cpu and train_kwargs.pop("amp", True),
                seed=seed, deterministic=True, verbose=False, val=True, optimizer=optimizer)
    if freeze is not None:
        args["freeze"] = int(freeze)
    if lr0 is not None:
        args["lr0"] = float(lr0)
    if warmup_epochs is not None:
        args["warmup_epochs"] = float(warmup_epochs)
    args.update(train_kwargs)
    settings = {k: v for k, v in args.items() if k not in ("project", "name", "exist_ok")}
    settings.update(base_model=str(base_pt), keep_head=keep_head, class_map=dict(class_map or {}), added_classes=added)

    base_onnx = None
    before = after = None
    if evaluate and keep_head:
        base_onnx = export_onnx(base_pt, imgsz, run_root / name / "base.onnx")
        before = evaluate_model(base_onnx, ds, imgsz=imgsz, conf=conf, iou=iou, class_merge=eval_class_merge, progress=progress)

    from tqdm import tqdm

    bar = tqdm(total=int(epochs), desc="fine-tune", unit="batch", disable=not progress)

    def on_train_start(trainer):
        bar.reset(total=int(epochs) * max(1, len(trainer.train_loader)))

    def on_batch_end(trainer):
        if bar.n < bar.total:
            bar.update(1)

    def on_epoch_end(trainer):
        m = trainer.metrics or {}
        bar.set_postfix({"epoch": f"{min(trainer.epoch + 1, int(epochs))}/{epochs}",
                         "val mAP50": round(float(m.get("metrics/mAP50(B)", 0.0)), 3),
                         "mAP50-95": round(float(m.get("metrics/mAP50-95(B)", 0.0)), 3)})

    base.add_callback("on_train_start", on_train_start)
    base.add_callback("on_train_batch_end", on_batch_end)
    base.add_callback("on_fit_epoch_end", on_epoch_end)
    t0 = time.perf_counter()
    with _quiet_ultralytics(progress):
        base.train(**args)
    train_s = time.perf_counter() - t0
    bar.close()
    trainer = base.trainer
    best = Path(trainer.best if Path(trainer.best).exists() else trainer.last)
    run_dir = Path(trainer.save_dir)
    onnx = export_onnx(best, imgsz, run_dir / "weights" / "best.onnx") if export else None
    if evaluate and onnx is not None:
        after = evaluate_model(onnx, ds, imgsz=imgsz, conf=conf, iou=iou, class_merge=eval_class_merge, progress=progress)
    res = FinetuneResult(run_dir, best, onnx, base_onnx, data_yaml, list(ds.class_names), before, after, settings, train_s)
    (run_dir / "finetune.json").write_text(json.dumps(res.to_dict(), indent=1, default=str))
    return res


# ---- the demonstration ------------------------------------------------------------------------------------------

def demo(out_dir: str | Path = "runs/finetune", epochs: int = 3, imgsz: int = 480, batch: int = 8, device: str = "cpu",
         freeze: int = 10, progress: bool = True) -> FinetuneResult:
    """Fine-tune pockit's person detector on the MOT ground truth of TUD-Campus + PETS09 (CPU, a few minutes).

    Labels 'person' -> the model's 'Normal' class, keeping its pretrained 2-class head (Normal/Fall
    are both people, standing and lying); evaluation merges both predicted classes into 'person'.
    The split holds out whole 2-second chunks of each camera (no near-identical frames across it).
    Backbone frozen, AdamW lr 2e-4, no warm-up, no mosaic: a gentle fine-tune (lr 2e-3 wrecked the
    pretrained model in one epoch here: mAP50 0.66 -> 0.00).
    """
    from .data import read_mot_dataset
    from .paths import data_dir

    mot = data_dir() / "mot"
    ds = Dataset.concat([read_mot_dataset(mot / "TUD-Campus"), read_mot_dataset(mot / "PETS09-S3-MF1")], name="mot-person")
    ds = split(ds, val=0.3, chunk_s=2.0, seed=0)
    return finetune(ds, "person-yolov8s-pt", epochs=epochs, imgsz=imgsz, batch=batch, device=device, out_dir=out_dir, name="demo",
                    class_map={"person": "Normal"}, freeze=freeze, eval_class_merge={"Fall": "Normal"}, mosaic=0.0,
                    progress=progress)


@click.command("train")
@click.argument("data", required=False, type=click.Path(exists=True))
@click.option("--format", "fmt", default="auto", type=click.Choice(["auto", "voc", "coco", "yolo", "mot"]), help="label format of DATA")
@click.option("--model", "base_model", default="person-yolov8s-pt", show_default=True, help="base weights (.pt or pockit model name)")
@click.option("--epochs", default=10, show_default=True)
@click.option("--imgsz", default=640, show_default=True)
@click.option("--batch", default=8, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, 0, 0,1 ...")
@click.option("--map", "maps", multiple=True, metavar="DATASET=MODEL", help="class mapping, e.g. --map person=Normal")
@click.option("--val", default=0.2, show_default=True, help="held-out fraction when DATA has no split")
@click.option("--chunk-s", default=60.0, show_default=True, help="seconds of one camera kept on one side of the split")
@click.option("--freeze", default=None, type=int, help="freeze the first N layers (10 = backbone)")
@click.option("--out", "out_dir", default="runs/finetune", show_default=True)
@click.option("--name", default=None)
@click.option("--demo", "run_demo", is_flag=True, help="run the built-in MOT person fine-tune demonstration")
def train_cmd(data, fmt, base_model, epochs, imgsz, batch, device, maps, val, chunk_s, freeze, out_dir, name, run_demo):
    """Fine-tune a detector on DATA (VOC/COCO/YOLO/MOT); prints before/after metrics on the held-out split."""
    if run_demo:
        res = demo(out_dir=out_dir, device=device)
    else:
        if not data:
            raise click.UsageError("give DATA (a label set) or --demo")
        from .data.io import load_dataset

        ds = load_dataset(data, fmt)
        if len(ds.report):
            click.echo(ds.report.text(limit=20), err=True)
        from .data.cli import _parse_maps

        cmap = _parse_maps(maps)
        res = finetune(ds, base_model, epochs=epochs, imgsz=imgsz, batch=batch, device=device, out_dir=out_dir, name=name,
                       class_map=cmap or None, val=val, chunk_s=chunk_s, freeze=freeze)
    click.echo(res.text())


if __name__ == "__main__":
    import sys

    r = demo(**({"epochs": int(sys.argv[1])} if len(sys.argv) > 1 else {}))
    print(r.text())
