'use strict';
// One Node job queue's side of a benchmark run, driven by harness/foreign.py:
//
//   node bench.js LIB check
//   node bench.js LIB enqueue URL N            one awaited add at a time (after 20 warm-up adds)
//   node bench.js LIB concurrent URL N K       K adds in flight at once, each loop awaiting its own
//   node bench.js LIB bulk URL N               the library's bulk add, its chunk per call
//   node bench.js LIB fill URL TASK N          N jobs for a drain (bulk where the library has it)
//   node bench.js LIB latency URL RATE TOTAL   5 warm-up adds, "warm" on stdout, waits for a line
//                                              on stdin, then TOTAL adds paced at RATE per second
//   node bench.js LIB worker URL MODE          runs the library's worker until killed
//
// Every command but `worker` prints one JSON line, the same results the Python adapters give.
const { payload, mixSpec, mixPayload } = require('./jobs');
const probe = require('./probe');

const WARMUP = 20;

function print(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

function seconds() {
  return performance.now() / 1000;
}

async function enqueue(lib, url, n) {
  const q = await lib.open(url);
  for (let i = 1; i <= WARMUP; i++) await q.add('noop', payload(-i));
  const t0 = seconds();
  for (let i = 0; i < n; i++) await q.add('noop', payload(i));
  const elapsed = seconds() - t0;
  await q.close();
  return { status: 'ok', value: n / elapsed };
}

async function concurrent(lib, url, n, inFlight) {
  const q = await lib.open(url);
  for (let i = 1; i <= WARMUP; i++) await q.add('noop', payload(-i));
  const loop = async (k) => {
    for (let i = k; i < n; i += inFlight) await q.add('noop', payload(i));
  };
  const t0 = seconds();
  await Promise.all(Array.from({ length: inFlight }, (_, k) => loop(k)));
  const elapsed = seconds() - t0;
  await q.close();
  return { status: 'ok', value: n / elapsed, producers: inFlight, threads: false };
}

function items(task, start, stop, withOptions) {
  const out = [];
  for (let i = start; i < stop; i++) {
    if (task === 'mix') out.push({ data: mixPayload(i), opts: withOptions(mixSpec(i)) });
    else out.push({ data: payload(i) });
  }
  return out;
}

async function bulk(lib, url, n) {
  if (!lib.bulkChunk) return { status: 'n/a', detail: 'no bulk API' };
  const q = await lib.open(url);
  await q.addBulk('noop', items('noop', -19, 0));
  const batches = [];
  for (let s = 0; s < n; s += lib.bulkChunk) {
    batches.push(items('noop', s, Math.min(n, s + lib.bulkChunk)));
  }
  const t0 = seconds();
  for (const batch of batches) await q.addBulk('noop', batch);
  const elapsed = seconds() - t0;
  await q.close();
  return { status: 'ok', value: n / elapsed, chunk: lib.bulkChunk };
}

async function fill(lib, url, task, n) {
  if (task === 'mix' && !lib.mix) return { status: 'n/a', detail: 'no equivalent options' };
  const q = await lib.open(url);
  const withOptions = (spec) => (lib.mixOptions ? lib.mixOptions(spec) : undefined);
  if (lib.bulkChunk) {
    for (let s = 0; s < n; s += lib.bulkChunk) {
      await q.addBulk(task, items(task, s, Math.min(n, s + lib.bulkChunk), withOptions));
    }
  } else {
    for (const { data, opts } of items(task, 0, n, withOptions)) await q.add(task, data, opts);
  }
  await q.close();
  return { status: 'ok', jobs: n };
}

function nextLine() {
  return new Promise((resolve) => {
    process.stdin.setEncoding('utf8');
    process.stdin.once('data', resolve);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function latency(lib, url, rate, total) {
  const q = await lib.open(url);
  for (let i = 1; i <= 5; i++) await q.add('noop', payload(-i)); // never a measured index
  print({ warm: true });
  await nextLine();
  const start = seconds();
  for (let i = 0; i < total; i++) {
    const delay = start + i / rate - seconds();
    if (delay > 0) await sleep(delay * 1000);
    await q.add('noop', payload(i));
  }
  const achieved = total / (seconds() - start);
  await q.close();
  return { status: 'ok', achieved_rate: achieved };
}

async function main() {
  const [name, command, url, ...rest] = process.argv.slice(2);
  const lib = require(`./libs/${name}`);
  if (command === 'check') {
    return { status: 'ok', version: lib.version, node: process.version };
  }
  if (command === 'worker') {
    await probe.startReporter(url); // once the library is loaded, as harness/worker_main.py
    await lib.work(url, rest[0]);
    return null; // runs until killed
  }
  if (command === 'enqueue') return enqueue(lib, url, Number(rest[0]));
  if (command === 'concurrent') return concurrent(lib, url, Number(rest[0]), Number(rest[1]));
  if (command === 'bulk') return bulk(lib, url, Number(rest[0]));
  if (command === 'fill') return fill(lib, url, rest[0], Number(rest[1]));
  if (command === 'latency') return latency(lib, url, Number(rest[0]), Number(rest[1]));
  throw new Error(`unknown command ${command}`);
}

main().then(
  (result) => {
    if (result) {
      print(result);
      process.exit(0); // open handles of a library (timers, sockets) must not keep it alive
    }
  },
  (err) => {
    print({ status: 'error', detail: `${err && err.name}: ${err && err.message}`.slice(0, 300) });
    process.exit(1);
  },
);
