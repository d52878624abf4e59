#!/usr/bin/env node
// The package's install script: builds the native addon c2d.node from source with cargo,
// unless a packed tarball carries a prebuilt addon for this platform that loads (then nothing
// is built, and native.js loads that one).
//
// In the c2d repository the crate is a member of the workspace (one target dir for all);
// in a packed tarball the engine's sources travel in native/ (see scripts/pack.js).
//
//   C2D_NODE_PROFILE   cargo profile: release (the default) or dev
//   CARGO_TARGET_DIR   where cargo builds (in a tarball install, native/target is used and
//                      removed afterwards unless this is set)
//   C2D_NODE_TYPES=1   also writes native.d.ts, the addon's TypeScript declarations, from
//                      what napi-derive records while compiling (a development step: it
//                      needs the devDependency @napi-rs/cli)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const bundled = path.join(root, 'native', 'Cargo.toml');
const inTarball = fs.existsSync(bundled);
const manifest = inTarball ? bundled : path.join(root, 'Cargo.toml');
const profile = process.env.C2D_NODE_PROFILE || 'release';

function fail(message) {
  console.error(`c2d: ${message}`);
  process.exit(1);
}

if (inTarball && process.env.C2D_NODE_TYPES !== '1') {
  const { platform, prebuilt } = require('./platform.js');
  const addon = prebuilt(root);
  if (fs.existsSync(addon)) {
    try {
      require(addon);
      console.error(`c2d: using the prebuilt addon for ${platform()}; nothing to build`);
      process.exit(0);
    } catch (e) {
      console.error(`c2d: the prebuilt addon for ${platform()} does not load here (${e.message}); building one`);
    }
  }
}

const cargo = process.env.CARGO || 'cargo';
const version = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (version.error || version.status !== 0) {
  fail(
    'building the native addon needs Rust (cargo, 1.85 or newer), which was not found: ' +
      'install it from https://rustup.rs and install c2d again',
  );
}

const args = ['build', '--manifest-path', manifest, '-p', 'c2d-node', '--profile', profile,
  '--message-format=json-render-diagnostics'];
// the repository's lock file pins every crate; a tarball's is the same file, pruned by cargo
if (!inTarball) args.push('--locked');
console.error(`c2d: building the native addon (cargo ${profile} profile); this takes a few minutes`);
const started = Date.now();
const env = { ...process.env };
let typeDefs = null;
if (process.env.C2D_NODE_TYPES === '1') {
  typeDefs = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'c2d-typedefs-'));
  env.NAPI_TYPE_DEF_TMP_FOLDER = typeDefs;
}
const build = spawnSync(cargo, args, {
  cwd: root,
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
  encoding: 'utf8',
  maxBuffer: 1 << 30,
});
if (build.error) fail(`running cargo: ${build.error.message}`);
if (build.status !== 0) fail(`cargo build failed (exit ${build.status}); its errors are above`);

let library = null;
for (const line of build.stdout.split('\n')) {
  if (!line.startsWith('{')) continue;
  const m = JSON.parse(line);
  if (m.reason === 'compiler-artifact' && m.target && m.target.name === 'c2d_node') {
    library = m.filenames.find((f) => /\.(so|dylib|dll)$/.test(f)) || library;
  }
}
if (!library) fail('cargo built no c2d_node library');

const out = path.join(root, 'c2d.node');
const partial = `${out}.${process.pid}`;
fs.copyFileSync(library, partial);
// a release addon goes without its symbol table (a third of its size), when binutils' strip
// is there (it comes with gcc)
if (profile === 'release') spawnSync('strip', ['--strip-unneeded', partial], { stdio: 'ignore' });
fs.renameSync(partial, out);
const mb = (fs.statSync(out).size / 1e6).toFixed(1);
console.error(`c2d: built ${out} (${mb} MB) in ${((Date.now() - started) / 1000).toFixed(0)} s`);

if (inTarball && !process.env.CARGO_TARGET_DIR) {
  fs.rmSync(path.join(root, 'native', 'target'), { recursive: true, force: true });
}

if (typeDefs) {
  import('@napi-rs/cli')
    .then(({ generateTypeDef }) => generateTypeDef({ typeDefDir: typeDefs, cwd: root }))
    .then(({ dts }) => {
      fs.writeFileSync(path.join(root, 'native.d.ts'), dts);
      fs.rmSync(typeDefs, { recursive: true, force: true });
      console.error('c2d: wrote native.d.ts');
    })
    .catch((e) => fail(`writing native.d.ts: ${e.stack || e}`));
}
