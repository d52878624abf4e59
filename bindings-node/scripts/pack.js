#!/usr/bin/env node
// `npm pack` / `npm publish` hooks: a tarball carries the sources of the engine the addon is
// built from, so that installing it needs no copy of the repository.
//
//   node scripts/pack.js          (prepack) copies into native/: the workspace manifest with
//                                 only the crates the addon needs, Cargo.lock, core/, hub/ and
//                                 this crate (Cargo.toml, build.rs, src/)
//   node scripts/pack.js --clean  (postpack) removes native/
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const here = path.resolve(__dirname, '..');
const repo = path.resolve(here, '..');
const out = path.join(here, 'native');

fs.rmSync(out, { recursive: true, force: true });
if (process.argv[2] === '--clean') process.exit(0);

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
