#!/usr/bin/env bash
# Fetch the demo camera clip: OpenCV's vtest.avi (people walking), from Debian's opencv-doc package.
# Downloads the .deb only (not installed: the package is ~270 MB unpacked) and extracts just that file
# to data/vtest.avi. Idempotent: does nothing when the file is already there.
# Usage: scripts/fetch_demo_video.sh [destination]   (default: <repo>/data/vtest.avi)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${1:-$repo_root/data/vtest.avi}"
member="./usr/share/doc/opencv-doc/examples/data/vtest.avi"

if [[ -s "$dest" ]]; then
    echo "demo video already present: $dest"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops privileges to _apt, which must be able to write here.
chmod 0777 "$tmp"

download() { (cd "$tmp" && apt-get download -q opencv-doc); }
if ! download; then
    # A fresh machine may have no package lists yet.
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    download
fi
deb="$(ls "$tmp"/opencv-doc_*.deb)"

mkdir -p "$(dirname "$dest")"
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" "$member"
mv "$tmp/$member" "$dest.partial"
mv "$dest.partial" "$dest"
echo "demo video written: $dest ($(stat -c %s "$dest") bytes)"
