// Loads the native addon: the one `npm install` built from source (scripts/build.js), else
// the prebuilt one a packed tarball carries for this platform (scripts/pack.js).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { platform, prebuilt } = require('./scripts/platform.js');

const built = path.join(__dirname, 'c2d.node');
const file = fs.existsSync(built) ? built : prebuilt(__dirname);
try {
  module.exports = require(file);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    throw new Error(
      `c2d: no native addon: neither ${built} nor a prebuilt one for ${platform()} is here. ` +
        `It is built when the package is installed (npm install runs "node scripts/build.js", ` +
        `which needs Rust's cargo; npm skips it for a package whose install script is not ` +
        `approved, see the README): run that script in ${__dirname}, or install the package again`,
      { cause: e },
    );
  }
  throw e;
}
