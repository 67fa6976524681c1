"""The run directory and source URIs of a run."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..config import PocConfig, resolve_path
from ..paths import contained


def make_run_dir(cfg: PocConfig, run_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """The run directory: ``run_dir`` if given (an earlier run there is refused unless
    ``overwrite``), else ``outputs.dir/<run_name or name-time>`` made unique."""
    if run_dir is not None:
        p = Path(run_dir)
        if (p / "run.json").exists() or (p / "events.jsonl").exists():
            if not overwrite:
                raise FileExistsError(f"{p} already holds a run (run.json/events.jsonl); choose another "
                                      "directory or pass overwrite=True (--overwrite) to replace it")
            import shutil

            for sub in ("tracks", "snapshots", "clips", "video", "reference"):
                shutil.rmtree(p / sub, ignore_errors=True)
            for f in ("run.json", "events.jsonl", "events.csv", "config.yaml"):
                (p / f).unlink(missing_ok=True)
    else:
        base = Path(cfg.outputs.dir)  # relative to the working directory, like any CLI output
        name = cfg.outputs.run_name or f"{cfg.name}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
        # the config validates both fields; this also covers configs built without validation
        contained(base, name, "outputs.run_name" if cfg.outputs.run_name else "name")
        p = base / name
        i = 1
        while p.exists() and any(p.iterdir()):
            p = base / f"{name}-{i}"
            i += 1
    p.mkdir(parents=True, exist_ok=True)
    return p



def resolve_media(cfg: PocConfig, uri: str) -> str:
    """``media:NAME`` -> a local file via pockit's media registry; ``data:REL/PATH`` -> a path under
    the local data directory (POCKIT_DATA_DIR); other URIs pass through (relative files resolve
    against the config file's folder)."""
    if isinstance(uri, str) and uri.startswith("data:"):
        from ..paths import data_dir

        p = data_dir() / uri.split(":", 1)[1]
        if not p.exists():
            raise FileNotFoundError(f"{uri}: not found under the data directory {data_dir()} (set POCKIT_DATA_DIR)")
        return str(p)
    if isinstance(uri, str) and uri.startswith("media:"):
        from ..registry import fetch_media

        return str(fetch_media(uri.split(":", 1)[1]))
    return resolve_path(cfg, uri)
