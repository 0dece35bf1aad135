#!/usr/bin/env bash
# Re-create _vendor/ (offline Mermaid and MathJax for the book) from the npm registry.
#
#   scripts/vendor_assets.sh            # run from anywhere; writes <repo>/_vendor
#
# Only the files the site needs are copied:
#   _vendor/mermaid/mermaid.esm.min.mjs + _vendor/mermaid/chunks/mermaid.esm.min/*.mjs
#   _vendor/mathjax/tex-mml-chtml.js    + _vendor/mathjax/output/chtml/fonts/woff-v2/*.woff
#                                       + _vendor/mathjax/input/tex/extensions/*.js (TeX packages
#                                         that MathJax autoloads on first use, e.g. \boldsymbol)
# Nothing else: no classic mermaid.js bundles, no source maps, no MathJax accessibility extras.
# _vendor/ is added to the static path by _ext/offline_assets.py, after Jupyter Book has turned
# every *.js under its static paths into a <script> tag, so these files load only on demand.
set -euo pipefail

MERMAID_VERSION="${MERMAID_VERSION:-11.12.1}"
MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo_root/_vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "mermaid@${MERMAID_VERSION}" >/dev/null
npm pack --silent "mathjax@${MATHJAX_VERSION}" >/dev/null
mkdir mermaid-pkg mathjax-pkg
tar -xzf mermaid-"${MERMAID_VERSION}".tgz -C mermaid-pkg
tar -xzf mathjax-"${MATHJAX_VERSION}".tgz -C mathjax-pkg

rm -rf "$dest"
mkdir -p "$dest/mermaid/chunks/mermaid.esm.min" "$dest/mathjax/output/chtml/fonts/woff-v2" \
  "$dest/mathjax/input/tex/extensions"

cp mermaid-pkg/package/dist/mermaid.esm.min.mjs "$dest/mermaid/"
cp mermaid-pkg/package/dist/chunks/mermaid.esm.min/*.mjs "$dest/mermaid/chunks/mermaid.esm.min/"
cp mermaid-pkg/package/LICENSE "$dest/mermaid/LICENSE"

cp mathjax-pkg/package/es5/tex-mml-chtml.js "$dest/mathjax/"
cp mathjax-pkg/package/es5/output/chtml/fonts/woff-v2/*.woff "$dest/mathjax/output/chtml/fonts/woff-v2/"
cp mathjax-pkg/package/es5/input/tex/extensions/*.js "$dest/mathjax/input/tex/extensions/"
cp mathjax-pkg/package/LICENSE "$dest/mathjax/LICENSE"

cat > "$dest/VERSIONS.txt" <<VERSIONS
# Vendored front-end assets (generated; do not edit)

Re-create with \`scripts/vendor_assets.sh\`.

- mermaid ${MERMAID_VERSION} (MIT): \`mermaid/\`, from \`npm pack mermaid@${MERMAID_VERSION}\` (dist/)
- mathjax ${MATHJAX_VERSION} (Apache-2.0): \`mathjax/\`, from \`npm pack mathjax@${MATHJAX_VERSION}\` (es5/)

They let the book render diagrams and maths without contacting a CDN.
VERSIONS

echo "vendored into $dest:"
du -sh "$dest/mermaid" "$dest/mathjax"
