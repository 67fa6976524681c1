"""Model conversions that need heavy tools, run once in a subprocess (``pockit.inference.convert`` starts it).

Run by path, not imported by pockit: ``python convert_worker.py KIND SRC OUT [--syspath DIR]``. Standard library
at module level; each KIND imports its tool inside (torch + ultralytics, or tensorflow + tf2onnx), so this file also
runs under another interpreter that has the tools but not pockit (``POCKIT_CONVERT_PYTHON``).

Kinds:
- ``ultralytics-onnx``: an Ultralytics ``.pt`` -> ONNX (dynamic batch and input size, opset 17, onnxslim), with the
  YOLOv12 area-attention patch: checkpoints pickled by the original YOLOv12 code (and its forks) hold ``AAttn``
  modules with separate ``qk``/``v`` convolutions and a positional convolution applied to ``v``; stock Ultralytics
  8.4 builds a fused ``qkv`` and its forward fails on them (``'AAttn' object has no attribute 'qkv'``). The patch
  gives such modules the original YOLOv12 forward and leaves stock ones alone.
- ``tf-ssd-onnx``: a TensorFlow 1 object-detection frozen graph (``image_tensor`` -> ``detection_*``) -> ONNX with
  tf2onnx, opset 13, the NMS inside the graph kept.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

TF_SSD_INPUTS = "image_tensor:0"
TF_SSD_OUTPUTS = "detection_boxes:0,detection_classes:0,detection_scores:0,num_detections:0"
TF_SSD_OPSET = 13
ULTRALYTICS_OPSET = 17


def _yolov12_aattn_forward(self, x):
    """The original YOLOv12 area attention (non-flash path) on modules with ``qk``, ``v`` and ``pe``."""
    b, c, h, w = x.shape
    n = h * w
    qk = self.qk(x).flatten(2).transpose(1, 2)  # (b, n, 2c)
    v = self.v(x)
    pos = self.pe(v)  # positional term from v, before attention
    v = v.flatten(2).transpose(1, 2)  # (b, n, c)
    if self.area > 1:  # attention within `area` horizontal strips
        qk = qk.reshape(b * self.area, n // self.area, 2 * c)
        v = v.reshape(b * self.area, n // self.area, c)
    bb, nn_ = qk.shape[:2]
    q, k = qk.split([c, c], dim=2)
    q = q.transpose(1, 2).reshape(bb, self.num_heads, self.head_dim, nn_)
    k = k.transpose(1, 2).reshape(bb, self.num_heads, self.head_dim, nn_)
    v = v.transpose(1, 2).reshape(bb, self.num_heads, self.head_dim, nn_)
    attn = ((q.transpose(-2, -1) @ k) * (self.head_dim ** -0.5)).softmax(dim=-1)  # (bb, heads, n', n')
    out = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2)  # (bb, n', heads, head_dim)
    out = out.reshape(b, n, c).reshape(b, h, w, c).permute(0, 3, 1, 2)
    return self.proj(out + pos)


def patch_yolov12_attention() -> None:
    """Route ``AAttn.forward`` to the original YOLOv12 forward for modules pickled with ``qk``/``v``."""
    from ultralytics.nn.modules import block

    stock = block.AAttn.forward
    if getattr(stock, "_pockit_patched", False):
        return

    def forward(self, x):
        if "qk" in self._modules and "qkv" not in self._modules:
            return _yolov12_aattn_forward(self, x)
        return stock(self, x)

    forward._pockit_patched = True
    block.AAttn.forward = forward


def ultralytics_onnx(src: str, out: str, imgsz: int = 640) -> dict:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch  # noqa: F401 - fails early with a clear ModuleNotFoundError when the [ml] extra is missing
    from ultralytics import YOLO

    patch_yolov12_attention()
    with tempfile.TemporaryDirectory() as tmp:
        pt = os.path.join(tmp, "model.pt")
        shutil.copyfile(src, pt)
        model = YOLO(pt)
        names = dict(model.names)
        exported = model.export(format="onnx", imgsz=imgsz, dynamic=True, simplify=True, opset=ULTRALYTICS_OPSET,
                                device="cpu", verbose=False)
        shutil.move(str(exported), out)
    import ultralytics

    return {"names": names, "tool": f"ultralytics {ultralytics.__version__}", "opset": ULTRALYTICS_OPSET}


def tf_ssd_onnx(src: str, out: str) -> dict:
    import importlib.metadata as md

    cmd = [sys.executable, "-m", "tf2onnx.convert", "--graphdef", src, "--output", out, "--inputs", TF_SSD_INPUTS,
           "--outputs", TF_SSD_OUTPUTS, "--opset", str(TF_SSD_OPSET)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, check=False, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0 or not os.path.isfile(out):
        tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
        raise RuntimeError(f"tf2onnx failed (exit {proc.returncode}):\n{tail}")
    return {"tool": f"tf2onnx {md.version('tf2onnx')}, tensorflow {md.version('tensorflow-cpu') if _has('tensorflow-cpu') else md.version('tensorflow')}",
            "opset": TF_SSD_OPSET}


def _has(dist: str) -> bool:
    import importlib.metadata as md

    try:
        md.version(dist)
    except md.PackageNotFoundError:
        return False
    return True


def _classes_into_main(path: str) -> None:
    import importlib.util
    import inspect

    spec = importlib.util.spec_from_file_location("pockit_checkpoint_classes", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    main = sys.modules["__main__"]
    for name, obj in vars(mod).items():
        if inspect.isclass(obj) and obj.__module__ == mod.__name__:
            setattr(main, name, obj)


KINDS = {"ultralytics-onnx": ultralytics_onnx, "tf-ssd-onnx": tf_ssd_onnx}
#: modules each kind needs (checked quickly before converting, for a clear message)
NEEDS = {"ultralytics-onnx": ("torch", "ultralytics", "onnx"), "tf-ssd-onnx": ("tensorflow", "tf2onnx")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=sorted(KINDS))
    p.add_argument("src")
    p.add_argument("out")
    p.add_argument("--syspath", action="append", default=[], help="directory put first on sys.path (modules the "
                   "checkpoint's pickle refers to)")
    p.add_argument("--main-classes", help="a .py file whose classes the checkpoint pickled as __main__.<name>: "
                   "loaded and put into __main__ before unpickling")
    p.add_argument("--check", action="store_true", help="only check that the tools are importable")
    a = p.parse_args(argv)
    if a.check:
        import importlib.util

        missing = [m for m in NEEDS[a.kind] if importlib.util.find_spec(m) is None]
        print(json.dumps({"missing": missing}))
        return 0
    for d in reversed(a.syspath):
        sys.path.insert(0, d)
    if a.main_classes:
        _classes_into_main(a.main_classes)
    t0 = time.perf_counter()
    info = KINDS[a.kind](a.src, a.out)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    info["python"] = sys.version.split()[0]
    print("POCKIT_CONVERT " + json.dumps(info, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
