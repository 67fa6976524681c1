"""pockit.data: label sets in and out (VOC, COCO, YOLO, MOT), validation reports, class mapping,
dataset health, leak-free splits, Ultralytics export, and frame capture from site footage."""
from .coco import read_coco, to_coco_dict, write_coco
from .dataset import Dataset, ImageRecord, image_size, size_category, validate
from .mot import read_mot_dataset
from .report import Issue, ValidationReport
from .voc import read_voc, write_voc
from .yolo import read_yolo, write_yolo

__all__ = [
    "Dataset", "ImageRecord", "Issue", "ValidationReport", "image_size", "read_coco", "read_mot_dataset", "read_voc",
    "read_yolo", "size_category", "to_coco_dict", "validate", "write_coco", "write_voc", "write_yolo",
]
