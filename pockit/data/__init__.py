"""pockit.data: label sets in and out (VOC, COCO, YOLO, MOT), validation reports, class mapping,
dataset health, leak-free splits, Ultralytics export, and frame capture from site footage."""
from .classes import map_to_model, remap_classes
from .coco import read_coco, to_coco_dict, write_coco
from .dataset import (
    Dataset,
    ImageRecord,
    duplicate_boxes,
    image_size,
    infer_source_frame,
    size_category,
    validate,
)
from .errors import LabelError
from .health import DatasetHealth, group_key, health, leakage, split
from .io import detect_format, load_dataset, save_dataset
from .mot import read_mot_dataset
from .report import Issue, ValidationReport
from .voc import read_voc, write_voc
from .yolo import export_ultralytics, read_yolo, write_yolo

__all__ = [
    "Dataset",
    "DatasetHealth",
    "ImageRecord",
    "Issue",
    "LabelError",
    "ValidationReport",
    "detect_format",
    "duplicate_boxes",
    "export_ultralytics",
    "group_key",
    "health",
    "image_size",
    "infer_source_frame",
    "leakage",
    "load_dataset",
    "map_to_model",
    "read_coco",
    "read_mot_dataset",
    "read_voc",
    "read_yolo",
    "remap_classes",
    "save_dataset",
    "size_category",
    "split",
    "to_coco_dict",
    "validate",
    "write_coco",
    "write_voc",
    "write_yolo",
]
