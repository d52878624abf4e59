#!/usr/bin/env node
// `npm pack` / `npm publish` hooks: a tarball carries the sources of the engine the addon is
// built from, so that installing it needs no copy of the repository, and, packed in a built
// checkout, the addon itself for this platform, so that installing it on a machine of the same
// platform needs neither Rust nor the install script (the way napi-rs packages ship).
//
//   node scripts/pack.js          (prepack) copies into native/: the workspace manifest with
//                                 only the crates the addon needs, Cargo.lock, core/, hub/ and
//                                 this crate (Cargo.toml, build.rs, src/); and c2d.node, if
//                                 it was built, into prebuilds/<platform>/ (see platform.js),
//                                 without its symbol table
//   node scripts/pack.js --clean  (postpack) removes native/ and prebuilds/
//
//   C2D_NODE_PREBUILT=0           packs the sources only
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const repo = path.resolve(here, '..');
const out = path.join(here, 'native');
const prebuilds = path.join(here, 'prebuilds');

fs.rmSync(out, { recursive: true, force: true });
fs.rmSync(prebuilds, { recursive: true, force: true });
if (process.argv[2] === '--clean') process.exit(0);

const built = path.join(here, 'c2d.node');
if (process.env.C2D_NODE_PREBUILT !== '0' && fs.existsSync(built)) {
  const { platform, prebuilt } = require('./platform.js');
  const to = prebuilt(here);
  fs.mkdirSync(path.dirname(to), { recursive: true });
  // binutils' strip comes with gcc; without it the addon goes as it is
  const stripped = require('node:child_process').spawnSync('strip', ['--strip-unneeded', built, '-o', to]);
  if (stripped.status !== 0) fs.copyFileSync(built, to);
  const mb = (fs.statSync(to).size / 1e6).toFixed(1);
  console.error(`c2d: packing the addon built here as the prebuilt one for ${platform()} (${mb} MB)`);
}

const workspace = fs.readFileSync(path.join(repo, 'Cargo.toml'), 'utf8');
const members = /^members = \[.*\]$/m;
if (!members.test(workspace)) throw new Error('the workspace Cargo.toml has no one-line members list');
fs.mkdirSync(out);
fs.writeFileSync(
  path.join(out, 'Cargo.toml'),
  workspace.replace(members, 'members = ["core", "hub", "bindings-node"]'),
);
fs.copyFileSync(path.join(repo, 'Cargo.lock'), path.join(out, 'Cargo.lock'));
const copy = (from, to) => fs.cpSync(path.join(repo, from), path.join(out, to), { recursive: true });
for (const crate of ['core', 'hub']) {
  copy(`${crate}/Cargo.toml`, `${crate}/Cargo.toml`);
  copy(`${crate}/src`, `${crate}/src`);
}
for (const part of ['Cargo.toml', 'build.rs', 'src']) copy(`bindings-node/${part}`, `bindings-node/${part}`);
