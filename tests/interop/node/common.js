'use strict';
// What the interop clients share: settings from the environment, the one closing line, and
// the CA the service SDK cannot be given. Every byte on the wire comes from the official SDKs.
const { spawnSync } = require('child_process');

function setting(name, fallback) {
  const value = process.env[name];
  return value === undefined || value === '' ? fallback : value;
}

function intSetting(name, fallback) {
  const value = Number.parseInt(setting(name, String(fallback)), 10);
  if (!Number.isInteger(value)) end(false, `${name} is not an integer`);
  return value;
}

let ended = false;
// The last stdout line, 'OK: …' (exit 0) or 'FAIL: …' (exit 1); later calls do nothing.
function end(ok, text) {
  if (ended) return;
  ended = true;
  console.log(`${ok ? 'OK' : 'FAIL'}: ${text}`);
  process.exit(ok ? 0 : 1);
}

function log(text) {
  console.error(`[${new Date().toISOString()}] ${text}`);
}

// azure-iothub has no option for a CA: Node reads NODE_EXTRA_CA_CERTS only when it starts,
// so a client given IOTHUB_CA_FILE runs itself again with it set. Returns only in the process
// that has it.
function trustCaFile() {
  const ca = setting('IOTHUB_CA_FILE');
  if (!ca || process.env.NODE_EXTRA_CA_CERTS === ca) return;
  const child = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit',
    env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
  });
  process.exit(child.status === null ? 1 : child.status);
}

// Fails the run after TIMEOUT_S seconds (60), saying what was still missing.
function deadline(progress) {
  const seconds = intSetting('TIMEOUT_S', 60);
  setTimeout(() => end(false, `timeout after ${seconds} s: ${progress()}`), seconds * 1000).unref();
}

function connectionStringField(cs, key) {
  for (const part of (cs || '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at) === key) return part.slice(at + 1);
  }
  return undefined;
}

// C2D_PROPERTIES: a JSON object whose values are sent, and expected, as strings.
function extraProperties() {
  let parsed;
  try {
    parsed = JSON.parse(setting('C2D_PROPERTIES', '{}'));
  } catch (e) {
    end(false, `C2D_PROPERTIES is not JSON: ${e.message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) end(false, 'C2D_PROPERTIES is not a JSON object');
  return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, String(v)]));
}

module.exports = { setting, intSetting, end, log, trustCaFile, deadline, connectionStringField, extraProperties };
