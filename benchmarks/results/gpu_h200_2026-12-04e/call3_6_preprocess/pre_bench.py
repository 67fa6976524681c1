"""GPU time of the letterbox preprocessing per batch (32 NV12 576p frames), old against new, and the model alone."""
import importlib.util, sys, time
import cv2, numpy as np, torch
from pockit.inference.torch_backend import TorchDetector

import pockit.inference
spec = importlib.util.spec_from_file_location("pockit.inference.oldtb", ".devdata/old/torch_backend.py")
old = importlib.util.module_from_spec(spec); sys.modules["pockit.inference.oldtb"] = old; spec.loader.exec_module(old)

B = int(sys.argv[1]) if len(sys.argv) > 1 else 32
det = TorchDetector(".devdata/models/person-yolov8s.pt", device="cuda:0", half=True, batch=B)
det.warmup()
cap = cv2.VideoCapture(".devdata/video/pets576.mp4")
frames = []
while len(frames) < B:
    ok, img = cap.read()
    h, w = img.shape[:2]
    i420 = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420)
    y = i420[:h]; u = i420[h:h + h // 4].reshape(h // 2, w // 2); v = i420[h + h // 4:].reshape(h // 2, w // 2)
    frames.append(torch.from_numpy(np.concatenate([y, np.stack([u, v], -1).reshape(h // 2, w)], 0)).cuda())
bgr = [torch.from_numpy(cv2.cvtColor(f.cpu().numpy(), cv2.COLOR_YUV2BGR_NV12)).cuda() for f in frames]

def old_pre(fr):
    x, infos = old.TorchDetector.preprocess_gpu(det, fr)
    det._static_in[: len(fr)].copy_(x)  # what forward_raw did with it
    return x

def new_pre(fr):
    return det.preprocess_gpu(fr, out=det._static_in[: len(fr)])[0]

def model():
    g, out = det._graphs[B]; g.replay()

def gpu_ms(fn, n=60):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record(); t0 = time.perf_counter()
    for _ in range(n): fn()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / n, (time.perf_counter() - t0) * 1e3 / n

with torch.inference_mode():
    a = old_pre(frames).clone(); b = new_pre(frames).clone()
    print("new vs old batch: max |diff| * 255 =", float((a.float() - b.float()).abs().max()) * 255)
    for r in range(3):
        for name, fn in (("model (graph replay)", model), ("old preprocess NV12", lambda: old_pre(frames)),
                         ("new preprocess NV12", lambda: new_pre(frames)), ("old preprocess BGR", lambda: old_pre(bgr)),
                         ("new preprocess BGR", lambda: new_pre(bgr))):
            g, w = gpu_ms(fn)
            print(f"round {r} batch {B}: {name:24s} GPU {g:6.3f} ms/batch  (host {w:6.3f} ms)")
