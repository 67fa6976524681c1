# GPU session 15: NvdecCapture.rewind() on the lent GPU: same frames on the second pass, and how long it takes
import hashlib, sys, time
import numpy as np
from pockit.sources.nvdec import NvdecCapture

path = sys.argv[1]
def one_pass(cap):
    n, h = 0, []
    img = np.empty((cap.height, cap.width, 3), np.uint8)
    t = time.perf_counter()
    while True:
        ok, f = cap.read(img)
        if not ok:
            break
        if n < 3 or n % 100 == 0:
            h.append(hashlib.md5(f.tobytes()).hexdigest()[:8])
        n += 1
    return n, h, time.perf_counter() - t

for conv in ("cpu", "model", "gpu"):
    t = time.perf_counter(); cap = NvdecCapture(path, convert=conv); t_open = time.perf_counter() - t
    n1, h1, d1 = one_pass(cap)
    t = time.perf_counter(); ok = cap.rewind(); t_rw = time.perf_counter() - t
    t = time.perf_counter(); ok2, f0 = cap.read(); t_first = time.perf_counter() - t
    n2, h2, d2 = one_pass(cap); n2 += 1
    t = time.perf_counter(); cap.rewind(); ok3, _ = cap.read(); t_rw2 = time.perf_counter() - t
    cap.release()
    print(f"{conv}: open {t_open*1e3:.1f} ms; pass1 {n1} frames {d1:.2f}s; rewind ok={ok} {t_rw*1e3:.1f} ms, "
          f"first frame after {t_first*1e3:.1f} ms; pass2 {n2} frames; same hashes (from frame 1) "
          f"{h1[1:] == ([hashlib.md5(f0.tobytes()).hexdigest()[:8]] + h2)[1:len(h1)] if False else None}; "
          f"h1={h1[:4]} h2={h2[:3]}; rewind+first read again {t_rw2*1e3:.1f} ms pos={cap._pos}")
    # frame 0 of pass 2 vs pass 1
    print("   frame0 pass2 hash", hashlib.md5(f0.tobytes()).hexdigest()[:8], "pass1", h1[0])
