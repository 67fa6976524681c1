"""NV12 -> letterboxed model input, GPU time per batch: variants (batch 32 / 64, 576x768 -> 480x640 in 640x640)."""
import sys, time
import cv2, numpy as np, torch
import torch.nn.functional as F
from pockit.inference.torch_backend import TorchDetector, PAD_VALUE

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
src = torch.stack(frames)
N, H3, W = src.shape; H = H3 * 2 // 3
dt = torch.float16
info = __import__("pockit.inference.torch_backend", fromlist=["x"]).letterbox_geometry(H, W, 640, 640)
nh, nw = round(H * info.ratio), round(W * info.ratio); left, top = info.pad
X = det._static_in
M = torch.tensor([[1.164, 0.0, 1.596], [1.164, -0.391, -0.813], [1.164, 2.018, 0.0]], device="cuda")
Bv = torch.tensor([-16 * 1.164 - 128 * 1.596, -16 * 1.164 + 128 * (0.391 + 0.813), -16 * 1.164 - 128 * 2.018], device="cuda")
Mt = (M.T / 255).to(dt).contiguous(); Bh = (Bv / 255).to(dt)

def v0():  # the old code
    y = (src[:, :H].to(dt) - 16.0) * 1.164
    uv = src[:, H:].reshape(N, H // 2, W // 2, 2).to(dt) - 128.0
    uv = uv.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
    u, v = uv[..., 0], uv[..., 1]
    rgb = torch.stack((y + 1.596 * v, y - 0.813 * v - 0.391 * u, y + 2.018 * u), 1).clamp_(0.0, 255.0)
    rgb = F.interpolate(rgb, size=(nh, nw), mode="bilinear", align_corners=False)
    x = torch.full((N, 3, 640, 640), PAD_VALUE / 255.0, device="cuda", dtype=dt)
    x[:, :, top:top + nh, left:left + nw] = (rgb / 255.0).to(dt)
    X[:N].copy_(x.contiguous(memory_format=torch.channels_last))

def v3():  # full-res, NHWC, nearest chroma by expand, colour by addmm, channels_last resize
    yuv = torch.empty((N, H, W, 3), dtype=dt, device="cuda")
    yuv[..., 0] = src[:, :H]
    uv = src[:, H:].reshape(N, H // 2, 1, W // 2, 1, 2).expand(N, H // 2, 2, W // 2, 2, 2)
    yuv[..., 1:] = uv.reshape(N, H, W, 2)
    rgb = torch.addmm(Bh, yuv.view(-1, 3), Mt).clamp_(0.0, 1.0).view(N, H, W, 3).permute(0, 3, 1, 2)
    rgb = F.interpolate(rgb, size=(nh, nw), mode="bilinear", align_corners=False)
    X[:N, :, top:top + nh, left:left + nw] = rgb

def v3b():  # as v3, resize before the colour matrix (linear: same but the clamp), NHWC
    yuv = torch.empty((N, H, W, 3), dtype=dt, device="cuda")
    yuv[..., 0] = src[:, :H]
    uv = src[:, H:].reshape(N, H // 2, 1, W // 2, 1, 2).expand(N, H // 2, 2, W // 2, 2, 2)
    yuv[..., 1:] = uv.reshape(N, H, W, 2)
    r = F.interpolate(yuv.permute(0, 3, 1, 2), size=(nh, nw), mode="bilinear", align_corners=False)  # channels_last
    rgb = torch.addmm(Bh, r.permute(0, 2, 3, 1).reshape(-1, 3), Mt).clamp_(0.0, 1.0).view(N, nh, nw, 3)
    X[:N, :, top:top + nh, left:left + nw] = rgb.permute(0, 3, 1, 2)

def v1():  # planes resized at half/full res first (chroma bilinear from half res), then colour at target size
    yr = F.interpolate(src[:, None, :H].to(dt), size=(nh, nw), mode="bilinear", align_corners=False)
    uv = src[:, H:].reshape(N, H // 2, W // 2, 2).permute(0, 3, 1, 2).to(dt)
    uvr = F.interpolate(uv, size=(nh, nw), mode="bilinear", align_corners=False)
    yuv = torch.cat([yr, uvr], 1)  # N,3,nh,nw
    rgb = torch.addmm(Bh, yuv.permute(0, 2, 3, 1).reshape(-1, 3), Mt).clamp_(0.0, 1.0).view(N, nh, nw, 3)
    X[:N, :, top:top + nh, left:left + nw] = rgb.permute(0, 3, 1, 2)

def cur():  # the committed new code
    det.preprocess_gpu(list(src), out=X[:N])

def gpu_ms(fn, n=60):
    for _ in range(5): fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(n): fn()
    b.record(); torch.cuda.synchronize()
    return a.elapsed_time(b) / n

with torch.inference_mode():
    X.fill_(PAD_VALUE / 255.0)
    v0(); ref = X[:N].float().clone()
    for name, fn in (("v3", v3), ("v3b", v3b), ("v1", v1), ("cur", cur)):
        X.fill_(PAD_VALUE / 255.0); fn()
        d = (X[:N].float() - ref).abs() * 255
        print(f"{name}: max |diff| {float(d.max()):.2f}  mean {float(d.mean()):.4f} (of 255)")
    for r in range(2):
        for name, fn in (("v0 old", v0), ("v3 nhwc exact", v3), ("v3b nhwc resize-first", v3b), ("v1 planes resize-first", v1), ("cur (conv)", cur)):
            print(f"round {r} batch {B}: {name:24s} GPU {gpu_ms(fn):6.3f} ms/batch")

if len(sys.argv) > 2:
    from torch.profiler import profile, ProfilerActivity
    with torch.inference_mode():
        for name, fn in (("v0", v0), ("v1", v1), ("v3", v3)):
            for _ in range(3): fn()
            torch.cuda.synchronize()
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(10): fn()
                torch.cuda.synchronize()
            print("=====", name)
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=70))
