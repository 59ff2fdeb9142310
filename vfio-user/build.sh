#!/usr/bin/env bash
# Build one libvfio-user revision, its samples/server with the project's
# one-line patch, and fsmcheck's test device against it.
#
#   vfio-user/build.sh TARBALL OUTDIR
#
# TARBALL: an unmodified `git archive` of libvfio-user (../shared/third_party/
# libvfio-user/libvfio-user-REV.tar.gz). OUTDIR (under build/, gitignored)
# gets src/ (the unpacked tree; samples/server.c patched there, the tarball is
# untouched), meson/ (meson + ninja: the library and samples/server, a debug
# build: assertions on), and bin/fsmcheck-vfu-device and bin/server. With no
# meson on PATH the library is built with gcc alone from lib/*.c (-ljson-c).
# Idempotent: an existing OUTDIR/bin is rebuilt only when its inputs changed;
# concurrent calls for one OUTDIR wait for each other (flock).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tarball="$1"; out="$2"
[ -f "$tarball" ] || { echo "build.sh: no such tarball: $tarball" >&2; exit 2; }
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# One build of OUTDIR at a time (pytest-xdist workers and make may start it together).
exec 9>"$out/.build.lock"
flock 9
stamp="$out/inputs.sha256"
want="$(cat "$tarball" "$here/samples-server-bar1.patch" "$here/device/fsmcheck_vfu_device.c" "$0" | sha256sum)"
if [ -x "$out/bin/fsmcheck-vfu-device" ] && [ -x "$out/bin/server" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
rm -rf "$out/src" "$out/meson" "$out/bin" "$stamp"
mkdir -p "$out/src" "$out/bin"
tar -C "$out/src" --strip-components=1 -xzf "$tarball"
patch -s -p1 -d "$out/src" < "$here/samples-server-bar1.patch"
cflags=(-std=gnu99 -O1 -g -D_GNU_SOURCE -Wall -Wno-missing-field-initializers)
if command -v meson >/dev/null && command -v ninja >/dev/null; then
  meson setup -Dbuildtype=debug "$out/meson" "$out/src" >"$out/meson.log" 2>&1 || { cat "$out/meson.log" >&2; exit 1; }
  ninja -C "$out/meson" lib/libvfio-user.so.0.0.1 samples/server >>"$out/meson.log" 2>&1 || { cat "$out/meson.log" >&2; exit 1; }
  libdir="$out/meson/lib"
  ln -s ../meson/samples/server "$out/bin/server"   # meson's rpath is $ORIGIN-relative: run it in place
  ln -sf libvfio-user.so.0.0.1 "$libdir/libvfio-user.so"
  gcc "${cflags[@]}" -I"$out/src/include" -o "$out/bin/fsmcheck-vfu-device" "$here/device/fsmcheck_vfu_device.c" \
    -L"$libdir" -lvfio-user -Wl,-rpath,"$libdir"
else  # gcc alone: the library's sources straight into each program (DEBUG: assertions on)
  json="$(pkg-config --cflags json-c 2>/dev/null || echo -I/usr/include/json-c)"
  lib=("$out"/src/lib/*.c)
  inc=(-I"$out/src/include" -I"$out/src/lib" $json -DDEBUG)
  gcc "${cflags[@]}" "${inc[@]}" -o "$out/bin/fsmcheck-vfu-device" "$here/device/fsmcheck_vfu_device.c" "${lib[@]}" -ljson-c
  gcc "${cflags[@]}" "${inc[@]}" -o "$out/bin/server" "$out/src/samples/server.c" "${lib[@]}" -ljson-c
fi
echo "$want" > "$stamp"
