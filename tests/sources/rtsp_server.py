"""A loopback RTSP server for tests: GStreamer's gst-rtsp-server serving one H.264 clip.

Runs under Debian's system Python (python3-gi, gir1.2-gst-rtsp-server-1.0,
gstreamer1.0-plugins-{base,good,bad}), not the project's virtualenv:

    /usr/bin/python3 tests/sources/rtsp_server.py --port 8554 --path /cam --clip clip.mp4

Each client gets its own pipeline from the start of the clip, paced in real time; TCP and
UDP transports are both offered. Prints `READY rtsp://127.0.0.1:PORT/PATH` once listening
and stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

DEMUXERS = {".mp4": "qtdemux", ".mov": "qtdemux", ".mkv": "matroskademux", ".ts": "tsdemux"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/cam")
    parser.add_argument("--clip", required=True, help="H.264 clip (.mp4, .mov, .mkv or .ts)")
    args = parser.parse_args()

    suffix = args.clip[args.clip.rfind(".") :].lower()
    demux = DEMUXERS.get(suffix)
    if demux is None:
        print(f"unsupported clip type {suffix}", file=sys.stderr)
        return 2

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    location = args.clip.replace('"', '\\"')
    factory.set_launch(
        f'( filesrc location="{location}" ! {demux} ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()

    def stop() -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, stop)
    print(f"READY rtsp://127.0.0.1:{args.port}{args.path}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
