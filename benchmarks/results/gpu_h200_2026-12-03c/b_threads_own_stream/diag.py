import time, sys, threading, subprocess, numpy as np, torch
from pockit.sources.nvdec import NvdecCapture
v = ".devdata/video/pets576.mp4"
LOAD = "import torch,time\na=torch.randn(8192,8192,device='cuda',dtype=torch.half)\nt=time.time()\nwhile time.time()-t<%d:\n    b=a@a\n    torch.cuda.synchronize()\n"
def rate(n, conv, secs=4):
    caps = [NvdecCapture(v, convert=conv) for _ in range(n)]
    buf = np.zeros((576, 768, 3), np.uint8)
    for c in caps: c.read(buf)
    t = time.perf_counter(); k = 0
    while time.perf_counter() - t < secs:
        for c in caps:
            ok, _ = c.read(buf); k += ok
    dt = time.perf_counter() - t
    for c in caps: c.release()
    return k / dt
for conv in ("cpu", "gpu"):
    print(f"idle GPU, 6 decoders {conv}: {rate(6, conv):.0f} f/s", flush=True)
    p = subprocess.Popen([sys.executable, "-c", LOAD % 8]); time.sleep(2.5)
    print(f"matmul loop in ANOTHER process, 6 decoders {conv}: {rate(6, conv):.0f} f/s", flush=True)
    p.wait()
    stop = False
    def load():
        s = torch.cuda.Stream()
        a = torch.randn(8192, 8192, device="cuda", dtype=torch.half)
        with torch.cuda.stream(s):
            while not stop:
                b = a @ a
                s.synchronize()
    th = threading.Thread(target=load); th.start(); time.sleep(1.5)
    print(f"matmul loop in THIS process (own stream), 6 decoders {conv}: {rate(6, conv):.0f} f/s", flush=True)
    stop = True; th.join()
