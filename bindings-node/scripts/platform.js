// Where a prebuilt addon for this machine lives in a packed tarball: prebuilds/<platform>/,
// the platform named as napi-rs names its per-platform packages (linux-x64-gnu,
// linux-arm64-musl, darwin-arm64, win32-x64-msvc). Used by native.js (loading), build.js
// (the install script, which builds only without a prebuilt addon that loads) and pack.js.
'use strict';
const path = require('node:path');

/** This machine's platform, as prebuilds/ names it. */
function platform() {
  const { platform: os, arch } = process;
  if (os === 'linux') {
    // glibc reports its version; musl (Alpine) does not
    const glibc = process.report.getReport().header.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (os === 'win32') return `win32-${arch}-msvc`;
  return `${os}-${arch}`;
}

/** The prebuilt addon for this machine in the package at `root`. */
function prebuilt(root) {
  return path.join(root, 'prebuilds', platform(), 'c2d.node');
}

module.exports = { platform, prebuilt };
