'use strict';
// What every Node adapter runs: the payloads, the realistic mix's per-job options (the same
// rule as harness/mix.py) and the job body.
const { now, done } = require('./probe');

const SLEEP_MS = 10;

function payload(i) {
  return { i, t: now() };
}

/** Scenario (f), job i: 10% fail once and retry at once, 10% delayed 0-1 s, priority 0-3. */
function mixSpec(i) {
  return {
    fail: i % 10 === 0,
    delayMs: i % 10 === 1 ? (i * 7919) % 1000 : 0,
    priority: i % 4,
  };
}

function mixPayload(i) {
  const data = payload(i);
  if (mixSpec(i).fail) data.fail = true;
  return data;
}

/** Run one job: `attempt` is 1-based. Returns the job's result (stored by the library). */
async function handle(task, data, attempt) {
  if (task === 'sleep') await new Promise((resolve) => setTimeout(resolve, SLEEP_MS));
  if (task === 'mix' && data.fail && attempt === 1) throw new Error('fails once');
  done(data.t, data.i);
  return task === 'mix' ? { i: data.i } : undefined;
}

function redisOptions(url) {
  const u = new URL(url);
  const db = Number(u.pathname.replace('/', '') || 0);
  return { host: u.hostname, port: Number(u.port || 6379), db };
}

module.exports = { payload, mixSpec, mixPayload, handle, redisOptions };
