"""The run directory and source URIs of a run."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from ..config import PocConfig
from ..paths import contained


def holds_run(p: Path) -> bool:
    return (p / "run.json").exists() or (p / "events.jsonl").exists()


def refuse_existing_run(run_dir: str | Path | None, overwrite: bool = False) -> None:
    """Raise when ``run_dir`` already holds a run and ``overwrite`` is off: checked when the run starts, before
    the model loads (seconds to minutes), and again when the directory is made."""
    if run_dir is not None and not overwrite and holds_run(Path(run_dir)):
        raise FileExistsError(f"{run_dir} already holds a run (run.json/events.jsonl); choose another "
                              "directory or pass overwrite=True (--overwrite) to replace it")


def make_run_dir(cfg: PocConfig, run_dir: str | Path | None = None, overwrite: bool = False) -> Path:
    """The run directory: ``run_dir`` if given (an earlier run there is refused unless
    ``overwrite``), else ``outputs.dir/<run_name or name-time>`` made unique."""
    if run_dir is not None:
        p = Path(run_dir)
        refuse_existing_run(p, overwrite)
        if holds_run(p):  # overwrite: the earlier run's outputs go
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
    """Kept for callers of ``pockit.pipeline.resolve_media``: :func:`pockit.resolve.resolve_uri`."""
    from ..resolve import resolve_uri

    return resolve_uri(uri, cfg)
