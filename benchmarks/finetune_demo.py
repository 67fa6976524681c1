#!/usr/bin/env python
"""Fine-tune pockit's person detector on MOT ground truth (TUD-Campus + PETS09-S3-MF1) and report before/after.

    python benchmarks/finetune_demo.py [--epochs 3] [--imgsz 480] [--device cpu] [--out runs/finetune]

Same as ``pockit train --demo``. Held-out split: whole 2-second chunks of each camera (30 %).
Labels: 'person' -> the model's 'Normal' class (its head is kept); 'Fall' predictions count as person.
Writes <out>/demo/train/finetune.json and prints the metrics table.
"""
import argparse

from pockit.train import demo

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--imgsz", type=int, default=480)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--freeze", type=int, default=10)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default="runs/finetune")
    a = ap.parse_args()
    res = demo(out_dir=a.out, epochs=a.epochs, imgsz=a.imgsz, batch=a.batch, device=a.device, freeze=a.freeze)
    print(res.text())
