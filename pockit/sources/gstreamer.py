"""GStreamer pipeline strings for OpenCV's CAP_GSTREAMER backend (Jetson CSI/RTSP, USB cameras).

The Jetson pipelines follow NVIDIA's samples: hardware decode with ``nvv4l2decoder``, colour
conversion/scaling with ``nvvidconv`` out of NVMM memory to BGRx, ``videoconvert`` to BGR, and an
``appsink drop=true max-buffers=1`` so a slow consumer always gets the newest frame.
"""
from __future__ import annotations

import functools
import re

import cv2

APPSINK = "appsink drop=true max-buffers=1 sync=false"
_TO_BGR = "video/x-raw, format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR"


@functools.lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """True when this OpenCV build has the GStreamer video I/O backend."""
    m = re.search(r"^\s*GStreamer:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return bool(m) and m.group(1).upper() not in ("NO", "OFF")


def no_gstreamer_message(uri: str) -> str:
    return (f"{uri}: this OpenCV ({cv2.__version__}) was built without GStreamer "
            "(cv2.getBuildInformation() shows 'GStreamer: NO'; the pip wheels opencv-python* never have it). "
            "On a Jetson use the JetPack OpenCV (`sudo apt install python3-opencv`, then `pip uninstall "
            "opencv-python opencv-python-headless` in this environment) or build OpenCV with -DWITH_GSTREAMER=ON; "
            "for RTSP without GStreamer pass the rtsp:// URL directly (FFmpeg backend, CPU decode)")


def jetson_csi_pipeline(sensor_id: int = 0, width: int = 1920, height: int = 1080, fps: int = 30,
                        flip: int = 0, out_width: int | None = None, out_height: int | None = None) -> str:
    """A CSI camera on a Jetson (``nvarguscamerasrc``); flip is nvvidconv's flip-method (0-7, 2 = 180 deg)."""
    if not 0 <= int(flip) <= 7:
        raise ValueError(f"flip must be nvvidconv flip-method 0..7, got {flip!r}")
    ow, oh = out_width or width, out_height or height
    return (f"nvarguscamerasrc sensor-id={int(sensor_id)} ! "
            f"video/x-raw(memory:NVMM), width=(int){int(width)}, height=(int){int(height)}, "
            f"format=(string)NV12, framerate=(fraction){int(fps)}/1 ! "
            f"nvvidconv flip-method={int(flip)} ! video/x-raw, width=(int){int(ow)}, height=(int){int(oh)}, "
            f"format=(string)BGRx ! videoconvert ! video/x-raw, format=(string)BGR ! {APPSINK}")


def jetson_rtsp_pipeline(url: str, latency: int = 200, codec: str = "h264", tcp: bool = True) -> str:
    """An RTSP camera decoded by the Jetson hardware decoder (``nvv4l2decoder``); codec h264 or h265."""
    codec = codec.lower().replace(".", "")
    if codec not in ("h264", "h265"):
        raise ValueError(f"codec must be 'h264' or 'h265', got {codec!r}")
    if not url.startswith(("rtsp://", "rtsps://")):
        raise ValueError(f"expected an rtsp:// URL, got {url!r}")
    proto = " protocols=tcp" if tcp else ""
    return (f'rtspsrc location="{url}" latency={int(latency)}{proto} ! '
            f"rtp{codec}depay ! {codec}parse ! nvv4l2decoder ! nvvidconv ! {_TO_BGR} ! {APPSINK}")


def usb_pipeline(device: str | int = "/dev/video0", width: int = 1280, height: int = 720, fps: int = 30,
                 fmt: str = "mjpeg", jetson: bool = False) -> str:
    """A USB (V4L2) camera; fmt 'mjpeg' (most webcams at 720p+) or 'raw' (YUYV). jetson=True decodes
    MJPEG with ``nvv4l2decoder mjpeg=1``."""
    dev = f"/dev/video{device}" if isinstance(device, int) or str(device).isdigit() else str(device)
    caps = f"width=(int){int(width)}, height=(int){int(height)}, framerate=(fraction){int(fps)}/1"
    fmt = fmt.lower()
    if fmt in ("mjpeg", "mjpg", "jpeg"):
        if jetson:
            dec = f"nvv4l2decoder mjpeg=1 ! nvvidconv ! {_TO_BGR}"
        else:
            dec = "jpegdec ! videoconvert ! video/x-raw, format=(string)BGR"
        return f"v4l2src device={dev} ! image/jpeg, {caps} ! {dec} ! {APPSINK}"
    if fmt in ("raw", "yuyv", "yuy2"):
        return (f"v4l2src device={dev} ! video/x-raw, format=(string)YUY2, {caps} ! videoconvert ! "
                f"video/x-raw, format=(string)BGR ! {APPSINK}")
    raise ValueError(f"fmt must be 'mjpeg' or 'raw', got {fmt!r}")
