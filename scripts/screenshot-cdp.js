#!/usr/bin/env node
// Load a page in headless Chromium over the DevTools protocol (--remote-debugging-pipe,
// no npm packages), wait until it is fully painted, move a rotbench report's angle
// slider and model choice through every value, record every console message,
// uncaught exception and browser log entry, check that every container marked
// data-fit shows its content without scrolling sideways, and save a screenshot.
//
//   node scripts/screenshot-cdp.js CHROMIUM URL OUT_PNG WIDTH HEIGHT PROFILE_DIR
//
// Prints each message on stderr; exit 0 when the page logged nothing of level
// warning or error and nothing overflowed, 1 when it did, 2 when Chromium failed.
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');

const [chrome, url, out, width, height, profile] = process.argv.slice(2);
if (!profile) {
  console.error('usage: screenshot-cdp.js CHROMIUM URL OUT_PNG WIDTH HEIGHT PROFILE_DIR');
  process.exit(2);
}
const W = parseInt(width, 10);
const H = parseInt(height, 10);

const proc = spawn(chrome, [
  '--headless', '--no-sandbox', '--disable-gpu',
  '--disable-background-networking', '--disable-component-update', '--no-first-run',
  '--disable-sync', '--disable-quic', '--disable-extensions', '--disable-default-apps',
  '--hide-scrollbars', `--user-data-dir=${profile}`, `--window-size=${W},${H}`,
  '--remote-debugging-pipe', 'about:blank',
], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
let chromeLog = '';
proc.stderr.on('data', (d) => { chromeLog += d; });

const toChrome = proc.stdio[3];
const fromChrome = proc.stdio[4];
let nextId = 1;
const pending = new Map();
const listeners = [];
let buf = Buffer.alloc(0);
fromChrome.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  let end;
  while ((end = buf.indexOf(0)) >= 0) {
    const msg = JSON.parse(buf.subarray(0, end).toString('utf8'));
    buf = buf.subarray(end + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(msg.error.message)); else resolve(msg.result);
    } else if (msg.method) {
      listeners.forEach((l) => l(msg));
    }
  }
});

function send(method, params = {}, sessionId) {
  const id = nextId++;
  const msg = { id, method, params };
  if (sessionId) msg.sessionId = sessionId;
  toChrome.write(JSON.stringify(msg) + '\0');
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

const problems = [];
listeners.push((msg) => {
  const p = msg.params || {};
  if (msg.method === 'Runtime.consoleAPICalled') {
    const text = (p.args || []).map((a) => (a.value !== undefined ? String(a.value) : a.description || a.type)).join(' ');
    const bad = ['error', 'warning', 'assert'].includes(p.type);
    console.error(`console.${p.type}: ${text}`);
    if (bad) problems.push(text);
  } else if (msg.method === 'Runtime.exceptionThrown') {
    const d = p.exceptionDetails || {};
    const text = (d.exception && d.exception.description) || d.text || 'exception';
    console.error(`uncaught: ${text}`);
    problems.push(text);
  } else if (msg.method === 'Log.entryAdded') {
    const e = p.entry || {};
    console.error(`log ${e.level} (${e.source}): ${e.text}${e.url ? ' ' + e.url : ''}`);
    if (e.level === 'error' || e.level === 'warning') problems.push(e.text);
  }
});

function waitFor(method, sessionId, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${method}`)), ms);
    listeners.push((msg) => {
      if (msg.method === method && msg.sessionId === sessionId) {
        clearTimeout(timer);
        resolve(msg.params);
      }
    });
  });
}

async function main() {
  const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
  await send('Runtime.enable', {}, sessionId);
  await send('Log.enable', {}, sessionId);
  await send('Page.enable', {}, sessionId);
  await send('Emulation.setDeviceMetricsOverride', { width: W, height: H, deviceScaleFactor: 1, mobile: false }, sessionId);
  const loaded = waitFor('Page.loadEventFired', sessionId, 60000);
  await send('Page.navigate', { url }, sessionId);
  await loaded;
  // Every image decoded, fonts ready, then two frames painted.
  await send('Runtime.evaluate', {
    expression: `Promise.all([...document.images].map(i => i.decode().catch(() => {})))
      .then(() => document.fonts.ready)
      .then(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))))`,
    awaitPromise: true,
  }, sessionId);
  // Exercise a rotbench report's explorer: every angle for every model, then back
  // to where it started; errors in the handlers are reported like any other. At
  // each step the label must name the chosen angle, and the stats and confusion
  // matrix must be drawn; across a model's angles the stats must change.
  const explorer = await send('Runtime.evaluate', {
    expression: `JSON.stringify((() => {
      const slider = document.getElementById('rb-angle');
      if (!slider) return [];
      const bad = [];
      const data = JSON.parse(document.getElementById('rb-data').textContent);
      const model = document.getElementById('rb-model');
      const start = [slider.value, model ? model.value : null];
      const fire = (el, type) => el.dispatchEvent(new Event(type));
      const text = id => (document.getElementById(id) || {}).textContent || '';
      for (const m of model ? [...model.options].map(o => o.value) : [null]) {
        if (model) { model.value = m; fire(model, 'change'); }
        const seen = new Set();
        for (let v = +slider.min; v <= +slider.max; v++) {
          slider.value = String(v);
          fire(slider, 'input');
          const want = String(data.angles[v]) + '\u00b0';
          if (text('rb-angle-label') !== want) bad.push('explorer: angle ' + v + ' shows "' + text('rb-angle-label') + '", not "' + want + '"');
          if (!text('rb-stats') || !document.getElementById('rb-confusion').firstChild) bad.push('explorer: nothing drawn at ' + want);
          seen.add(text('rb-stats'));
        }
        if (+slider.max > +slider.min && seen.size < 2) bad.push('explorer: model ' + m + ' shows the same numbers at every angle');
      }
      if (model) { model.value = start[1]; fire(model, 'change'); }
      slider.value = start[0];
      fire(slider, 'input');
      return bad;
    })())`,
    returnByValue: true,
  }, sessionId);
  for (const text of JSON.parse(explorer.result.value || '[]')) {
    console.error(text);
    problems.push(text);
  }
  await send('Runtime.evaluate', {
    expression: 'new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))',
    awaitPromise: true,
  }, sessionId);
  // A container marked data-fit="WHAT" must show all of its content at this width,
  // without a sideways scroll bar (the report's summary table).
  const fit = await send('Runtime.evaluate', {
    expression: `JSON.stringify([...document.querySelectorAll('[data-fit]')]
      .filter(e => e.scrollWidth > e.clientWidth)
      .map(e => [e.getAttribute('data-fit'), e.scrollWidth, e.clientWidth]))`,
    returnByValue: true,
  }, sessionId);
  for (const [what, need, have] of JSON.parse(fit.result.value)) {
    const text = `overflow: ${what} needs ${need} px but its box is ${have} px wide at a ${W} px viewport; it scrolls sideways`;
    console.error(text);
    problems.push(text);
  }
  const shot = await send('Page.captureScreenshot', { format: 'png', clip: { x: 0, y: 0, width: W, height: H, scale: 1 } }, sessionId);
  fs.writeFileSync(out, Buffer.from(shot.data, 'base64'));
  await send('Browser.close').catch(() => {});
}

const watchdog = setTimeout(() => { console.error('error: Chromium did not finish in 120 s'); proc.kill('SIGKILL'); process.exit(2); }, 120000);
// Leave only after Chromium has exited, so its profile folder can be removed.
function finish(code) {
  clearTimeout(watchdog);
  if (proc.exitCode !== null || proc.signalCode !== null) process.exit(code);
  proc.on('exit', () => process.exit(code));
  setTimeout(() => proc.kill('SIGKILL'), 5000);
}
main().then(() => {
  finish(problems.length ? 1 : 0);
}).catch((e) => {
  clearTimeout(watchdog);
  console.error(`error: ${e.message}`);
  console.error(chromeLog.split('\n').filter((l) => !/dbus|D-Bus/.test(l)).join('\n'));
  proc.kill('SIGKILL');
  finish(2);
});
