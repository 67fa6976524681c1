#!/usr/bin/env bash
# Installs everything the test suite needs (system packages when run as root, Python extras)
# and runs the whole suite: unit tests, browser tests, broker tests and the notebooks (nbval).
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="chromium mosquitto shellcheck fonts-noto-cjk"
if command -v apt-get >/dev/null 2>&1; then
  missing=""
  for p in $SYSTEM_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "installing system packages:$missing"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
  fi
fi

python3 -m pip install -q --upgrade pip
python3 -m pip install -q -e ".[test,ml,notebook,sinks,openvino,convert]"
# trackers and trackeval declare the GUI wheel opencv-python, which pip installs over the headless one: keep only
# opencv-python-headless (run by path: it must work while cv2 is broken; see pockit/deploy/opencv.py)
python3 pockit/deploy/opencv.py
export YOLO_OFFLINE=1 MPLBACKEND=Agg
python3 -m pytest -q -p no:cacheprovider --nbval-lax tests notebooks "$@"
