"""Where NVDEC decode spends host CPU (a diagnostic of the decode source, not a pipeline): OpenCV CPU decode, idle
ThreadedDecoders, pockit.sources.nvdec.NvdecCapture read round-robin and in threads, PyNvVideoCodec demuxer + decoder.
Env: VID (video), NDEC (decoders), CV1=1 (cv2.setNumThreads(1)), BLOCKSYNC=1 (blocking-sync CUDA context).
Usage on a CUDA host with PyNvVideoCodec: python benchmarks/gpu/nvdec_probe.py"""
import ctypes
import os
import threading
import time

import cv2
import numpy as np

P = os.environ.get("VID", ".devdata/video/pets576.mp4")
N = int(os.environ.get("NDEC", "8"))
if os.environ.get("CV1"):
    cv2.setNumThreads(1); print("cv2.setNumThreads(1)")
if os.environ.get("BLOCKSYNC"):
    cu = ctypes.CDLL("libcuda.so.1"); cu.cuInit(0)
    print("cuDevicePrimaryCtxSetFlags ->", cu.cuDevicePrimaryCtxSetFlags(0, 4))
def cpu(): return time.process_time()
def thread_cpu():
    return {t: 0 for t in []}
def report(name, frames, w0, c0):
    w = time.perf_counter() - w0; c = cpu() - c0
    print(f"{name:40s} frames {frames:5d} wall {w:6.2f}s  {frames/w:7.0f} f/s  cpu {c/frames*1000:6.3f} ms/frame  cores {c/w:5.2f}", flush=True)
# A: CPU decode
cap = cv2.VideoCapture(P, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1]); n = 0; w0 = time.perf_counter(); c0 = cpu()
while True:
    ok, f = cap.read()
    if not ok: break
    n += 1
report("A cv2 1-thread decode+BGR", n, w0, c0)
import torch, PyNvVideoCodec as nvc
from pockit.sources.nvdec import NvdecCapture, _current_context
torch.cuda.init(); ctx = _current_context()
# B: ThreadedDecoder idle
decs = [nvc.ThreadedDecoder(P, buffer_size=16, gpu_id=0, use_device_memory=True, cuda_context=ctx,
                            cuda_stream=torch.cuda.Stream().cuda_stream, output_color_type=nvc.OutputColorType.NATIVE) for _ in range(N)]
for d in decs: d.get_batch_frames(8)
time.sleep(0.5); w0 = time.perf_counter(); c0 = cpu(); time.sleep(3)
print(f"B {N} ThreadedDecoders idle (buffers full): cores busy {(cpu()-c0)/(time.perf_counter()-w0):.2f}", flush=True)
for d in decs: d.end()
del decs
# C: pockit NvdecCapture round robin
caps = [NvdecCapture(P) for _ in range(N)]
img = np.empty((576, 768, 3), np.uint8)
pin = torch.empty((576, 768, 3), dtype=torch.uint8, pin_memory=True).numpy()
n = 0; w0 = time.perf_counter(); c0 = cpu(); live = list(caps)
while live:
    for c in list(live):
        ok, _ = c.read(pin)
        if not ok: live.remove(c); continue
        n += 1
report(f"C NvdecCapture x{N} (ThreadedDecoder, NV12->cpu)", n, w0, c0)
for c in caps: c.release()
# D: Demuxer + Decoder, synchronous, decode only
def demux_decode(copy):
    from pockit.inference.torch_backend import _cudart
    rt = _cudart()
    st = torch.cuda.Stream()
    dm = [nvc.CreateDemuxer(filename=P) for _ in range(N)]
    dc = [nvc.CreateDecoder(gpuid=0, codec=d.GetNvCodecId(), cudacontext=ctx, cudastream=st.cuda_stream, usedevicememory=True) for d in dm]
    its = [iter(d) for d in dm]
    stage = torch.empty((8, 576 * 768 * 3 // 2), dtype=torch.uint8, pin_memory=True).numpy()
    n = 0; w0 = time.perf_counter(); c0 = cpu(); live = list(range(N))
    while live:
        for i in list(live):
            try:
                pkt = next(its[i])
            except StopIteration:
                live.remove(i); continue
            fr = dc[i].Decode(pkt)
            for k, f in enumerate(fr):
                if copy:
                    rt.cudaMemcpyAsync(stage[k % 8].ctypes.data, int(f.GetPtrToPlane(0)), stage.shape[1], 2, st.cuda_stream)
            if copy and fr:
                ev = torch.cuda.Event(blocking=True); ev.record(st); ev.synchronize()
                for k in range(len(fr)):
                    cv2.cvtColor(stage[k % 8].reshape(864, 768), cv2.COLOR_YUV2BGR_NV12, dst=pin)
            n += len(fr)
    report(f"D Demuxer+Decoder x{N} {'copy+cvt' if copy else 'decode only'}", n, w0, c0)
demux_decode(False)
demux_decode(True)
# E: threads: N threads each with its own NvdecCapture (as the pipeline's decode threads)
def worker(res, i):
    c = NvdecCapture(P); k = 0; buf = np.empty((576, 768, 3), np.uint8)
    while True:
        ok, _ = c.read(buf)
        if not ok: break
        k += 1
    res[i] = k; c.release()
res = {}; ths = [threading.Thread(target=worker, args=(res, i)) for i in range(N)]
w0 = time.perf_counter(); c0 = cpu()
for t in ths: t.start()
for t in ths: t.join()
report(f"E NvdecCapture in {N} threads", sum(res.values()), w0, c0)
