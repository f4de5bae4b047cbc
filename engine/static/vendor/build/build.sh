#!/bin/sh
# Rebuild engine/static/vendor/codemirror.js and mermaid.min.js (and their LICENSE.txt) from
# the npm registry, pinned by package-lock.json. Needs node >= 18 and npm. Nothing is
# installed in the repository: this folder is copied to a temporary directory, `npm ci`
# runs there, and only the four results are copied back. See README.md.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
vendor=$(dirname "$here")
work=$(mktemp -d "${TMPDIR:-/tmp}/caseloop-vendor.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

cp "$here/package.json" "$here/package-lock.json" "$here/entry.js" "$work/"
cd "$work"
npm ci --ignore-scripts --no-audit --no-fund

version() { node -p "require('./node_modules/$1/package.json').version"; }
mermaid_version=$(version mermaid)

# 1. CodeMirror: one minified IIFE defining window.CaseloopEditor.
./node_modules/.bin/esbuild entry.js --bundle --format=iife --minify --target=es2020 \
  --legal-comments=none --metafile=meta.json --log-level=warning \
  --banner:js="/*! Caseloop's CodeMirror 6 bundle (window.CaseloopEditor); MIT licences in codemirror.LICENSE.txt; rebuilt by vendor/build/build.sh */" \
  --outfile=codemirror.js

# Its licence file: every npm package esbuild put in the bundle, with its version and licence.
node --input-type=module > codemirror.LICENSE.txt <<'JS'
import { readFileSync, readdirSync, existsSync } from "node:fs";
const meta = JSON.parse(readFileSync("meta.json", "utf8"));
const names = new Set();
for (const input of Object.keys(meta.inputs)) {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (m) names.add(m[1]);
}
const packages = [...names].sort().map((name) => {
  const dir = `node_modules/${name}`;
  const pkg = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)(\.|$)/i.test(f));
  if (!file) throw new Error(`${name} has no LICENSE file: add its licence by hand`);
  return { name, version: pkg.version, license: pkg.license, text: readFileSync(`${dir}/${file}`, "utf8").trim() };
});
const lines = [
  "CodeMirror 6 — engine/static/vendor/codemirror.js is engine/static/vendor/build/entry.js",
  "bundled (esbuild, minified IIFE) with these npm packages, pinned by build/package-lock.json:",
  "",
  ...packages.map((p) => `  ${p.name}@${p.version} (${p.license})`),
  "",
  "Rebuild with engine/static/vendor/build/build.sh. Their licences follow.",
];
for (const p of packages) lines.push("", "-".repeat(78), `${p.name}@${p.version}`, "", p.text);
console.log(lines.join("\n"));
JS

# 2. Mermaid: dist/mermaid.min.js as published (it defines window.mermaid).
cp node_modules/mermaid/dist/mermaid.min.js mermaid.min.js
sum=$(sha256sum mermaid.min.js | cut -d' ' -f1)
{
  echo "Mermaid $mermaid_version — engine/static/vendor/mermaid.min.js is dist/mermaid.min.js of the npm"
  echo "package mermaid@$mermaid_version, unchanged (sha256 $sum)."
  echo "The licences of the libraries it bundles are in the comments at the end of that file."
  echo "Rebuild with engine/static/vendor/build/build.sh. Its licence (LICENSE of the package) follows."
  echo
  cat node_modules/mermaid/LICENSE
} > mermaid.LICENSE.txt

cp codemirror.js codemirror.LICENSE.txt mermaid.min.js mermaid.LICENSE.txt "$vendor/"
echo "built with esbuild $(version esbuild), mermaid $mermaid_version:"
cd "$vendor" && ls -l codemirror.js codemirror.LICENSE.txt mermaid.min.js mermaid.LICENSE.txt
