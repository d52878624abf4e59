// The hub's live page: one EventSource on `events` brings the whole state on every change
// (and every second); everything shown is built as DOM text, never parsed as HTML.
'use strict';

const $ = (id) => document.getElementById(id);
const WINDOW_MS = 60000;

let chosen = new URLSearchParams(location.hash.slice(1)).get('device');
let source = null;
const samples = []; // { t, counters }, the last minute
const waiting = new Map(); // message id -> device, test messages whose outcome is awaited

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('data-')) node.setAttribute(k, v);
    else if (k === 'onclick') node.addEventListener('click', v);
    else node[k] = v;
  }
  for (const c of children) {
    if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString();
}

function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

// long ids (GUIDs) are cut in the tables; the whole id is the cell's tooltip
function idCell(id) {
  const text = id && id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : (id || '');
  return el('td', { class: 'id', title: id || '' }, text);
}

function bytes(n) {
  return n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KiB`;
}

function connect() {
  if (source) source.close();
  const query = chosen ? `?device=${encodeURIComponent(chosen)}` : '';
  source = new EventSource(`events${query}`);
  source.addEventListener('state', (e) => render(JSON.parse(e.data)));
  source.onopen = () => setLive(true);
  source.onerror = () => {
    setLive(false, source.readyState === EventSource.CLOSED
      ? 'offline: open the address `c2d hub info` prints' : 'reconnecting…');
  };
}

function setLive(on, text) {
  const live = $('live');
  live.classList.toggle('offline', !on);
  live.textContent = on ? 'live' : text;
}

function choose(id) {
  chosen = id;
  history.replaceState(null, '', id ? `#device=${encodeURIComponent(id)}` : '#');
  $('body-view').hidden = true;
  connect();
}

function render(state) {
  $('hub-name').textContent = state.hub;
  if (!chosen && state.devices.length > 0) {
    choose(state.devices[0].id);
    return;
  }
  // the hub's throttling, when on: its tier, and its refusals beside the other rates
  $('throttled').hidden = !state.throttling;
  $('throttling').textContent = state.throttling
    ? `(${state.throttling.tier} × ${state.throttling.units}: ${state.throttling.c2d_sends_per_minute} sends / min)`
    : '';
  renderFaults(state.faults || []);
  renderRates({ ...state.counters, throttled: state.throttled });
  renderDevices(state);
  renderQueue(state);
  renderFeedback(state);
  renderDeadLetters(state);
  renderOutcomes(state);
}

// the faults a test or a person asked the hub for, while they last
function describeFault(f) {
  switch (f.fault) {
    case 'lose-acks': return `losing the next ${f.count} acknowledgement(s) of ${f.device}`;
    case 'delay': return `delaying deliveries to ${f.device} by ${f.delay_ms} ms`;
    case 'stall-store': return `store commits stalled for ${(f.for_ms / 1000).toFixed(1)} s more`;
    case 'refuse-sends': return f.count != null
      ? `refusing the next ${f.count} send(s) as ${f.error}`
      : `refusing sends as ${f.error} for ${(f.for_ms / 1000).toFixed(1)} s more`;
    default: return f.fault;
  }
}

function renderFaults(faults) {
  $('faults').hidden = faults.length === 0;
  $('faults-list').textContent = faults.map(describeFault).join('; ');
}

function renderRates(counters) {
  const now = performance.now();
  samples.push({ t: now, counters });
  while (samples.length > 2 && now - samples[0].t > WINDOW_MS + 2000) samples.shift();
  drawRates(now);
}

function drawRates(now) {
  for (const fig of document.querySelectorAll('.rate')) {
    const key = fig.dataset.counter;
    // the rate at each sample: its change since the sample about a second before it
    const points = [];
    let j = 0;
    for (let i = 1; i < samples.length; i++) {
      while (j < i - 1 && samples[i].t - samples[j + 1].t >= 1000) j++;
      const dt = (samples[i].t - samples[j].t) / 1000;
      if (dt > 0) points.push({ t: samples[i].t, v: (samples[i].counters[key] - samples[j].counters[key]) / dt });
    }
    const current = points.length ? points[points.length - 1].v : 0;
    fig.querySelector('.value').textContent = current >= 100 ? Math.round(current) : current.toFixed(1);
    draw(fig.querySelector('canvas'), points, now);
  }
}

function draw(canvas, points, now) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 240;
  const h = canvas.clientHeight || 48;
  canvas.width = w * ratio;
  canvas.height = h * ratio;
  const g = canvas.getContext('2d');
  g.scale(ratio, ratio);
  g.clearRect(0, 0, w, h);
  const max = Math.max(1, ...points.map((p) => p.v));
  g.strokeStyle = '#2f6fdf';
  g.lineWidth = 1.5;
  g.beginPath();
  points.forEach((p, i) => {
    const x = w - ((now - p.t) / WINDOW_MS) * w;
    const y = h - 2 - (p.v / max) * (h - 6);
    if (i === 0) g.moveTo(x, y); else g.lineTo(x, y);
  });
  g.stroke();
}

function depthCell(depth, limit) {
  const full = depth >= limit;
  const fill = el('span');
  // through the CSSOM: the page's policy allows no style attributes
  fill.style.width = `${Math.min(100, (100 * depth) / Math.max(1, limit))}%`;
  const bar = el('span', { class: full ? 'bar full' : 'bar' }, fill);
  return el('td', { 'data-depth': String(depth) },
    el('div', { class: 'depth' }, bar, `${depth} / ${limit}`));
}

function renderDevices(state) {
  const rows = state.devices.map((d) => {
    let conn = d.enabled ? 'not connected' : 'disabled';
    if (d.connected) conn = `${d.connected.transport} for ${span(state.at - d.connected.since)}`;
    else if (d.polled) conn = `https, polled ${span(state.at - d.polled)} ago`;
    return el('tr', {
      'data-device': d.id,
      class: d.id === chosen ? 'chosen' : '',
      title: `authentication: ${d.auth}`,
      onclick: () => choose(d.id),
    },
    el('td', { class: 'id' }, d.id),
    el('td', { class: d.connected ? '' : 'muted', 'data-connection': d.connected ? d.connected.transport : '' }, conn),
    depthCell(d.depth, state.limits.max_queue_depth));
  });
  $('devices').tBodies[0].replaceChildren(...rows);
  $('devices-empty').hidden = state.devices_total > 0;
  $('devices-count').textContent = state.devices_total > state.devices.length
    ? `${state.devices.length} of ${state.devices_total}` : `${state.devices_total}`;
}

function renderQueue(state) {
  const d = state.device;
  $('queue-none').hidden = !!d;
  $('queue-tools').hidden = !d;
  $('queue-device').textContent = d ? d.id : '';
  $('queue-depth').textContent = d ? `${d.depth} of ${state.limits.max_queue_depth}` : '';
  $('queue-depth').dataset.depth = d ? String(d.depth) : '';
  const rows = (d ? d.messages : []).map((m) => {
    const props = el('td', { class: 'props' },
      ...m.properties.map(([k, v]) => el('span', {}, `${k}=${v}`)),
      m.ack !== 'none' ? el('span', {}, `ack=${m.ack}`) : null);
    const expires = m.lock_expires
      ? `lock ${span(m.lock_expires - state.at)}, ttl ${span(m.expires - state.at)}`
      : `in ${span(m.expires - state.at)}`;
    return el('tr', { 'data-message-id': m.message_id || '', 'data-seq': String(m.seq) },
      idCell(m.message_id || `#${m.seq}`),
      el('td', {}, el('span', { class: `state ${m.state}` }, m.state)),
      el('td', {}, String(m.delivery_count)),
      props,
      el('td', {}, clock(m.enqueued)),
      el('td', {}, expires),
      el('td', {}, bytes(m.size)),
      el('td', {}, el('button', { type: 'button', class: 'show-body', onclick: () => showBody(d.id, m) }, 'body')));
  });
  $('queue').tBodies[0].replaceChildren(...rows);
}

async function showBody(device, m) {
  const resp = await fetch(`api/devices/${encodeURIComponent(device)}/messages/${m.seq}/body`);
  const text = await resp.text();
  $('body-id').textContent = m.message_id || `#${m.seq}`;
  // shown as text: a body is never markup here
  $('body-text').textContent = resp.ok ? text : `(${resp.status}) ${text}`;
  $('body-view').hidden = false;
}

function renderFeedback(state) {
  const rows = state.feedback.map((f) => el('tr', { 'data-message-id': f.message_id },
    el('td', {}, clock(f.at)),
    el('td', { class: `status-${f.status}` }, f.status),
    el('td', { class: 'id' }, f.device),
    idCell(f.message_id)));
  $('feedback').tBodies[0].replaceChildren(...rows);
}

function renderDeadLetters(state) {
  const rows = state.dead_letters.map((d) => el('tr', { 'data-message-id': d.message_id },
    el('td', {}, clock(d.at)),
    el('td', { class: `status-${d.reason}` }, d.reason),
    el('td', { class: 'id' }, d.device),
    idCell(d.message_id),
    el('td', {}, String(d.delivery_count))));
  $('dead-letters').tBodies[0].replaceChildren(...rows);
}

function renderOutcomes(state) {
  for (const [id] of waiting) {
    const f = state.feedback.find((r) => r.message_id === id);
    if (f) {
      waiting.delete(id);
      status(`Outcome of ${id}: ${f.status} (${clock(f.at)})`, f.status);
    }
  }
}

function status(text, outcome) {
  const p = $('action-status');
  p.textContent = text;
  p.className = outcome ? `status-${outcome}` : '';
  p.dataset.outcome = outcome || '';
}

async function act(path, body) {
  const resp = await fetch(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-c2d-ui': '1' },
    body: JSON.stringify(body || {}),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(text || `HTTP ${resp.status}`);
  return JSON.parse(text);
}

$('send-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  if (!chosen) return;
  try {
    const r = await act(`api/devices/${encodeURIComponent(chosen)}/messages`, { body: $('send-body').value });
    waiting.set(r.message_id, chosen);
    $('send-body').value = '';
    status(`Sent ${r.message_id}: waiting for its feedback…`);
  } catch (err) {
    status(`Not sent: ${err.message}`, 'Rejected');
  }
});

let armed = null;
$('purge').addEventListener('click', async () => {
  const button = $('purge');
  if (!armed) {
    button.classList.add('armed');
    button.textContent = 'Click again to purge';
    armed = setTimeout(() => { armed = null; button.classList.remove('armed'); button.textContent = 'Purge queue'; }, 4000);
    return;
  }
  clearTimeout(armed);
  armed = null;
  button.classList.remove('armed');
  button.textContent = 'Purge queue';
  try {
    const r = await act(`api/devices/${encodeURIComponent(chosen)}/purge`);
    status(`Purged ${r.purged} message(s) of ${chosen}`, 'Purged');
  } catch (err) {
    status(`Not purged: ${err.message}`, 'Rejected');
  }
});

$('body-close').addEventListener('click', () => { $('body-view').hidden = true; });
window.addEventListener('resize', () => drawRates(performance.now()));
connect();
