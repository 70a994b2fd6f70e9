'use strict';
// The benchmark's completion probe, as harness/probe.py writes it: jobs call done() (no Redis
// I/O on the job's path) and a timer publishes the totals to benchprobe:* every 5 ms.
const IORedis = require('ioredis');

const READY_KEY = 'benchprobe:ready';
const DONE_KEY = 'benchprobe:done';
const LAT_KEY = 'benchprobe:lat';
const FLUSH_MS = 5;

/** Wall clock in seconds with sub-millisecond resolution (Python's time.time()). */
function now() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

let count = 0;
let first = 0;
let last = 0;
let lat = [];

function done(enqueuedAt, i) {
  const t = now();
  if (!count) first = t;
  count += 1;
  last = t;
  lat.push(`${i} ${t - enqueuedAt}`);
}

/** Stamp this process ready, then publish the counters until it exits. */
async function startReporter(url) {
  const client = new IORedis(url);
  const pid = String(process.pid);
  await client.hset(READY_KEY, pid, String(now()));
  let sent = -1;
  const timer = setInterval(() => {
    if (count === sent && !lat.length) return;
    const pipe = client.pipeline();
    pipe.hset(DONE_KEY, pid, `${count} ${last} ${first}`);
    if (lat.length) pipe.rpush(LAT_KEY, ...lat);
    lat = [];
    sent = count;
    pipe.exec().catch(() => {});
  }, FLUSH_MS);
  timer.unref();
}

module.exports = { now, done, startReporter };
