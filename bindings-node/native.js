// Loads the native addon that `npm install` built from source (scripts/build.js).
'use strict';
const path = require('node:path');

const file = path.join(__dirname, 'c2d.node');
try {
  module.exports = require(file);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    throw new Error(
      `c2d: the native addon ${file} is missing: it is built when the package is installed ` +
        `(npm install runs "node scripts/build.js", which needs Rust's cargo); run that ` +
        `script in ${__dirname}, or install the package again`,
      { cause: e },
    );
  }
  throw e;
}
