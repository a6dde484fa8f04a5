#!/bin/sh
# Build slmdesk.app and a drag-to-Applications .dmg on macOS (run from the repository root).
#
#   sh packaging/macos/build_dmg.sh
#
# 1. packaging/build.py --portable-llama builds llama.cpp with GGML_NATIVE=OFF (Metal on; on Apple
#    Silicon the compiler's default target is the M1, which every Apple Silicon Mac runs; on Intel
#    llama-cpp-python itself turns AVX/AVX2/FMA/F16C off) into build/portable-llama/venv, then
#    runs PyInstaller; the spec's BUNDLE step writes dist/slmdesk.app (icon, version, Info.plist).
# 2. The .app is signed ad hoc (enough to start on the build machine's architecture; for other
#    people it needs a Developer ID signature and notarization, see docs/PACKAGING.md).
# 3. hdiutil packs the .app and a link to /Applications into a compressed read-only image.
set -eu

python3 packaging/build.py --portable-llama --no-deb "$@"

VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
APP=dist/slmdesk.app
DMG=dist/slmdesk-$VERSION-macos-$(uname -m).dmg
STAGE=build/dmg

test -d "$APP"
codesign --force --deep --sign - "$APP"
"$APP/Contents/MacOS/slmdesk" --version

rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "slmdesk $VERSION" -srcfolder "$STAGE" -fs HFS+ -format UDZO -ov "$DMG"
hdiutil verify "$DMG"
echo "built $DMG"
