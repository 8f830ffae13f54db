#!/bin/sh
# examples/greenrt/build.sh [x86_64|i386]: build the demo into build/examples/<arch>/demo
set -e
here=$(cd "$(dirname "$0")" && pwd)
exec make -s -C "$here" ARCH="${1:-x86_64}"
