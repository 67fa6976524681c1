"""The ``pockit`` command line. Sub-commands live beside the code they drive and load lazily."""
from __future__ import annotations

import importlib
import logging
import sys

import click

# name -> (module, attribute, short help)
COMMANDS = {
    "run": ("pockit.pipeline.cli", "run_cmd", "Run a PoC config: sources -> detector -> tracker -> rules -> outputs."),
    "demo": ("pockit.pipeline.cli", "demo_cmd", "Run the built-in demo scenario end to end (no arguments needed)."),
    "rules": ("pockit.rules.cli", "rules_cmd", "Replay a config's rules on recorded tracks (MOT file) -> events.jsonl."),
    "eval": ("pockit.evaluate.cli", "eval_group", "Evaluate detections, tracks or events against ground truth."),
    "bench": ("pockit.bench.cli", "bench_cmd", "Benchmark per-stage latency and throughput; size the device."),
    "report": ("pockit.report.cli", "report_cmd", "Write the customer PoC report (HTML, PDF) for a run."),
    "data": ("pockit.data.cli", "data_group", "Capture frames, convert and validate label sets, dataset health."),
    "train": ("pockit.train", "train_cmd", "Fine-tune a detector (needs the [ml] extra)."),
    "deploy": ("pockit.deploy.cli", "deploy_cmd", "Export models, build TensorRT engines, make a Jetson bundle."),
    "collect": ("pockit.collect.cli", "collect_cmd", "Gather the events of several boxes from MQTT or Kafka into one folder."),
    "models": ("pockit.inference.cli", "models_cmd", "List or fetch the models and sample media pockit knows."),
    "faces": ("pockit.faces.cli", "faces_cmd", "Face watch lists: enrol identities from photos (one folder each)."),
    "probe": ("pockit.sources.cli", "probe_cmd", "Check a video, folder, stream or camera: fps, size, frames, read rate."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        mod, attr, _help = COMMANDS[name]
        try:
            return getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:  # a sub-command whose module is broken or absent
            err = f"{type(exc).__name__}: {exc}"

            @click.command(name=name, help=_help, context_settings={"ignore_unknown_options": True})
            @click.argument("args", nargs=-1, type=click.UNPROCESSED)
            def _missing(args):
                raise click.ClickException(f"'pockit {name}' is unavailable ({err}); reinstall pockit or the extra it needs")

            return _missing

    def format_commands(self, ctx, formatter):
        rows = [(n, COMMANDS[n][2]) for n in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="more logging (-v info, -vv debug)")
@click.version_option(package_name="pockit")
def cli(verbose: int) -> None:
    """pockit: computer-vision PoCs from footage to signed report."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    try:
        cli.main(args=argv, prog_name="pockit", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
