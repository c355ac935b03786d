#!/usr/bin/env bash
# Open a rotbench report in headless Chromium from disk, fail if the page logs a
# warning or an error (console messages, uncaught exceptions, blocked requests) or,
# with Node, if a container marked data-fit (the summary table) scrolls sideways at
# the viewport's width, and save a screenshot.
#
#   scripts/screenshot.sh [REPORT_HTML] [OUT_PNG]
#     REPORT_HTML  default reports/demo/index.html
#     OUT_PNG      default docs/report-screenshot.png
#   SCREENSHOT_SIZE=W,H  viewport (default 1280,1640: header, summary, plots and strip)
#   scripts/screenshot.sh --self-test   check that a broken page (and, with Node, an
#                                       overflowing data-fit box) is caught
#
# With Node it drives Chromium over the DevTools protocol (scripts/screenshot-cdp.js:
# waits until every image is decoded and painted, and sees each message's level);
# without Node it falls back to `chromium --screenshot` and fails on any console line.
# Needs Debian's `chromium`; installs it with apt-get when missing and running as root.
# Exit: 0 clean page and screenshot written, 1 console output or no screenshot, 2 usage/setup.
set -euo pipefail

find_chromium() {
    for c in chromium chromium-browser google-chrome; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
    done
    return 1
}

if ! chrome="$(find_chromium)"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "chromium not found; installing Debian's chromium package" >&2
        apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
        chrome="$(find_chromium)" || { echo "error: chromium still missing after apt-get" >&2; exit 2; }
    else
        echo "error: chromium not found; install it with: apt-get update && apt-get install -y chromium" >&2
        exit 2
    fi
fi

size="${SCREENSHOT_SIZE:-1280,1640}"
width="${size%,*}"
height="${size#*,}"
case "$width,$height" in
    *[!0-9,]* | ,* | *,) echo "error: SCREENSHOT_SIZE=$size: give WIDTH,HEIGHT in pixels" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work" 2>/dev/null || true' EXIT

# Load URL and write a screenshot to PNG; print what the page logged on stderr.
# Returns 1 when it logged a warning or an error, 2 when Chromium failed.
shoot() {
    local url="$1" png="$2"
    # An empty profile and no background traffic: the page is all that loads.
    rm -rf "$work/profile" && mkdir -p "$work/profile"
    if command -v node >/dev/null 2>&1; then
        node "$here/screenshot-cdp.js" "$chrome" "$url" "$png" "$width" "$height" "$work/profile"
        return
    fi
    timeout 120 "$chrome" \
        --headless --no-sandbox --disable-gpu \
        --disable-background-networking --disable-component-update --no-first-run \
        --disable-sync --disable-quic --disable-extensions --disable-default-apps \
        --user-data-dir="$work/profile" \
        --hide-scrollbars --window-size="$width,$height" \
        --virtual-time-budget=5000 --run-all-compositor-stages-before-draw \
        --enable-logging=stderr --v=0 \
        --screenshot="$png" "$url" >"$work/chromium.out" 2>"$work/chromium.log" || true
    # Console messages are logged as `INFO:CONSOLE:<line>] "<message>", source: ...`.
    if grep -E ':CONSOLE[:(]' "$work/chromium.log" >&2; then
        return 1
    fi
}

if [ "${1:-}" = "--self-test" ]; then
    printf '%s\n' '<!doctype html><meta charset="utf-8"><title>bad</title>' \
        '<script>notDefined();</script>' >"$work/bad.html"
    if shoot "file://$work/bad.html" "$work/bad.png" 2>"$work/self-test.log"; then
        echo "self-test FAILED: the uncaught error was not reported" >&2
        cat "$work/self-test.log" >&2
        exit 1
    fi
    if ! grep -q notDefined "$work/self-test.log"; then
        echo "self-test FAILED: Chromium did not report the error; its output:" >&2
        cat "$work/self-test.log" >&2
        exit 1
    fi
    if command -v node >/dev/null 2>&1; then
        printf '%s\n' '<!doctype html><meta charset="utf-8"><title>wide</title>' \
            '<div data-fit="a wide box" style="width:200px;overflow:auto"><div style="width:400px">x</div></div>' \
            >"$work/wide.html"
        if shoot "file://$work/wide.html" "$work/wide.png" 2>"$work/self-test.log"; then
            echo "self-test FAILED: the overflowing data-fit box was not reported" >&2
            cat "$work/self-test.log" >&2
            exit 1
        fi
        if ! grep -q 'overflow: a wide box' "$work/self-test.log"; then
            echo "self-test FAILED: no overflow message; the output:" >&2
            cat "$work/self-test.log" >&2
            exit 1
        fi
        echo "self-test passed: an uncaught error and an overflowing data-fit box are reported"
    else
        echo "self-test passed: an uncaught error is reported (no Node: the overflow check is not run)"
    fi
    exit 0
fi

html="${1:-reports/demo/index.html}"
out="${2:-docs/report-screenshot.png}"
if [ ! -f "$html" ]; then
    echo "error: $html: no such file; run \`make demo\` (or give a report's index.html)" >&2
    exit 2
fi
abs="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
mkdir -p "$(dirname "$out")"
rm -f "$out"
status=0
shoot "file://$abs" "$out" || status=$?
if [ "$status" -ne 0 ]; then
    echo "error: $html: the browser logged the messages above (or Chromium failed)" >&2
    exit 1
fi
if [ ! -s "$out" ]; then
    echo "error: Chromium wrote no screenshot" >&2
    exit 1
fi
fits="nothing overflows"
command -v node >/dev/null 2>&1 || fits="overflow not checked (no Node)"
echo "no console warnings or errors, $fits; screenshot: $out (${width}x${height})"
exit 0
