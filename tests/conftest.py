from pathlib import Path

import pytest

from pockit.paths import data_dir


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Real footage with ground truth (POCKIT_DATA_DIR, default ../shared/data)."""
    d = data_dir()
    if not (d / "README.md").exists():
        pytest.fail(f"shared test data not found at {d}; set POCKIT_DATA_DIR")
    return d


@pytest.fixture(scope="session")
def tud_campus(shared_data) -> Path:
    return shared_data / "mot" / "TUD-Campus"


@pytest.fixture(scope="session")
def pets(shared_data) -> Path:
    return shared_data / "mot" / "PETS09-S3-MF1"


def _bgr_to_nv12(bgr):
    """(H*3/2, W) NV12 of a BGR image, as NVDEC outputs it (OpenCV makes I420; NV12 interleaves its U and V)."""
    import cv2
    import numpy as np

    h, w = bgr.shape[:2]
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    uv = np.stack([i420[h:h + h // 4].reshape(h // 2, w // 2), i420[h + h // 4:].reshape(h // 2, w // 2)], -1)
    return np.ascontiguousarray(np.concatenate([i420[:h], uv.reshape(h // 2, w)], 0))


@pytest.fixture
def bgr_to_nv12():
    return _bgr_to_nv12


@pytest.fixture
def fake_nvdec(monkeypatch):
    """NVDEC replaced by OpenCV (timestamps by index, like the real capture) and an NV12 round trip: reads give
    what NVDEC + OpenCV's NV12 -> BGR give; with convert "model", a read into a buffer of the frame's shape leaves
    the NV12 bytes there (``last_nv12``). Returns the list of URIs a capture was made for."""
    import cv2

    from pockit.sources import nvdec as nv

    made = []

    class FakeNvdec:
        def __init__(self, uri, convert="cpu", **kw):
            made.append(uri)
            self._cap, self._pos, self.convert, self.last_nv12 = cv2.VideoCapture(uri), 0, convert, False

        def read(self, image=None):
            ok, img = self._cap.read()
            self._pos += ok
            self.last_nv12 = False
            if not ok:
                return ok, None
            nv12 = _bgr_to_nv12(img)
            if self.convert == "model" and image is not None and image.shape == img.shape:
                image.reshape(-1)[: nv12.size] = nv12.reshape(-1)
                self.last_nv12 = True
                return True, image
            return True, cv2.cvtColor(nv12, cv2.COLOR_YUV2BGR_NV12)

        def grab(self):
            return self.read()[0]

        def get(self, prop):
            if prop == cv2.CAP_PROP_POS_MSEC:
                return max(self._pos - 1, 0) * 1000.0 / 25.0
            return self._cap.get(prop)

        def isOpened(self):  # noqa: N802 - OpenCV's name
            return True

        def set(self, *a):
            return False

        def release(self):
            self._cap.release()

    monkeypatch.setattr(nv, "nvdec_available", lambda: (True, ""))
    monkeypatch.setattr(nv, "NvdecCapture", FakeNvdec)
    return made
