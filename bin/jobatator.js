#!/usr/bin/env node
'use strict';
// Builds the TypeScript sources when the compiled output is missing or older than them,
// then runs the server. An installed package ships dist/ without src/ and skips the build.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const entry = path.join(root, 'dist', 'src', 'cli.js');
const sources = path.join(root, 'src');

function newestSource(dir) {
  let newest = 0;
  for (const item of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, item.name);
    const time = item.isDirectory() ? newestSource(full) : fs.statSync(full).mtimeMs;
    if (time > newest) newest = time;
  }
  return newest;
}

function buildIfNeeded() {
  if (!fs.existsSync(sources)) return;
  // tsc rewrites the output of every changed source, so fresh output is never older.
  const output = path.join(root, 'dist', 'src');
  const built = fs.existsSync(entry) ? newestSource(output) : 0;
  if (built >= newestSource(sources)) return;
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  } catch {
    process.stderr.write('jobatator: dist/ is missing or stale and TypeScript is not installed; run npm ci first\n');
    process.exit(1);
  }
  process.stderr.write('jobatator: compiling TypeScript sources...\n');
  execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.json')], { stdio: 'inherit' });
}

buildIfNeeded();
require(entry)
  .main(process.argv.slice(2))
  .then((code) => process.exit(code));
