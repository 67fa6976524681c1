import time, torch, numpy as np
from pockit.pipeline.framepool import FramePool
from pockit.inference.torch_backend import TorchDetector
det = TorchDetector('.devdata/models/person-yolov8s.pt', device='cuda:0', half=True, batch=64); det.warmup()
def T(f):
    torch.cuda.synchronize(); t0 = time.perf_counter(); r = f(); t1 = time.perf_counter(); torch.cuda.synchronize(); return r, (t1 - t0) * 1e3, (time.perf_counter() - t0) * 1e3
for (h, w) in ((576, 768), (1080, 1920)):
    pool = FramePool(64, h * w * 3, shared=True, pin=True)
    imgs = [pool.view(i, h, w) for i in range(64)]
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for im in imgs: im[...] = base
    print(h, w, 'registered', pool.pinned, 'is_pinned', torch.from_numpy(imgs[0]).is_pinned())
    tp = [torch.empty((h, w, 3), dtype=torch.uint8, pin_memory=True).numpy() for _ in range(64)]
    for a in tp: a[...] = base
    for name, src, pin in (("pool,hint", imgs, True), ("pool,nohint", imgs, False), ("torchpinned", tp, True), ("pageable", [base.copy() for _ in range(64)], False)):
        for rep in range(3):
            up, a, b = T(lambda: det.upload(src, pinned=pin))
            _, c, d = T(lambda: det.preprocess_gpu(up))
            p, e, f = T(lambda: det.launch(src, pinned=pin))
            _, g, k = T(lambda: det.finish(p))
        print(f"  {name:12s} upload call {a:.1f} / done {b:.1f} ms; preprocess {c:.1f}/{d:.1f}; launch {e:.1f}/{f:.1f}; finish {g:.1f}/{k:.1f} (batch 64)")
    pool.close()
