#!/usr/bin/env bash
# Vendor the JSME molecule editor (BSD-3-Clause) from its npm release into vendor/jsme/
# (installed as precursor_screen/serve/jsme/, see setup.cfg).  Run once by a maintainer; the
# result is committed, so neither users nor CI ever need npm or the network.
#
#   bash vendor/vendor_jsme.sh --no-inchi   # what is shipped (see below)
#   bash vendor/vendor_jsme.sh              # with the InChI module
set -euo pipefail
NO_INCHI=${1:-}

PKG=jsme-editor
VER=0.8.2                                   # JSME build 2020-12-26 inside
SHA1=163037a33be88b20a97022c34a1ae5b0374e32c6   # npm view jsme-editor@0.8.2 dist.shasum
HERE=$(cd "$(dirname "$0")" && pwd)
DEST="$HERE/jsme"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
# Always pin the version: a bare `npm pack ketcher-standalone` here resolved to
# an older release than `latest`, so never rely on the default tag.
npm pack --silent "$PKG@$VER" >/dev/null
TGZ="$PKG-$VER.tgz"
echo "$SHA1  $TGZ" | sha1sum -c -
tar xzf "$TGZ"

rm -rf "$DEST"
mkdir -p "$DEST"
# Runtime files only: GWT bootstrap, the 12 permutations (browser x flags),
# their split points (deferredjs/), images, CSS and the licence.
# Left out: jsme.devmode.js (GWT dev mode, needs a code server),
# compilation-mappings.txt, README.md, jsme_screenshot.png, package.json.
cp package/jsme.nocache.js package/*.cache.js package/*.cache.png \
   package/clear.cache.gif package/jsa.css package/license.txt "$DEST/"
cp -r package/deferredjs package/gwt "$DEST/"
# 96E40B969193BD74B8A621486920E79C.cache.js (1.2 MB) is the emscripten build of
# InChI 1.05 (IUPAC/InChI-Trust Licence No. 1.0, LGPL-2.1-style), fetched only
# when the user asks the editor for InChI/InChIKey.  --no-inchi drops it (those
# menu items then fail; RDKit can compute InChI on the server instead).
INCHI_NOTE="InChI module included (96E40B969193BD74B8A621486920E79C.cache.js)."
if [ "$NO_INCHI" = "--no-inchi" ]; then
  rm "$DEST/96E40B969193BD74B8A621486920E79C.cache.js"
  INCHI_NOTE="InChI module (96E40B969193BD74B8A621486920E79C.cache.js, emscripten build of
InChI 1.05 under the IUPAC/InChI-Trust Licence No. 1.0, LGPL-2.1-style) left out on
purpose, so that everything shipped here is under JSME's BSD-3-Clause licence and the
Apache-2.0 components it lists. The editor's InChI/InChIKey menu items therefore do
not work; precursor-screen computes InChI and InChIKey with RDKit on the server."
fi

cat > "$DEST/VENDORED.txt" <<EOF
JSME molecule editor, vendored unmodified from the npm package $PKG@$VER
(sha1 of the tarball: $SHA1), homepage https://jsme-editor.github.io/
Licence: BSD-3-Clause, see license.txt in this folder (it also lists the
Apache-2.0 and other components JSME bundles).
$INCHI_NOTE
Re-create with: bash vendor/vendor_jsme.sh $NO_INCHI
EOF
echo "vendored into $DEST: $(find "$DEST" -type f | wc -l) files, $(du -sb "$DEST" | cut -f1) bytes"
