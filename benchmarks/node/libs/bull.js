'use strict';
// Bull 4: BullMQ's predecessor, Lua scripts over lists and sorted sets.
const Queue = require('bull');
const { handle } = require('../jobs');

const CONCURRENCY = 200;

module.exports = {
  version: require('bull/package.json').version,
  bulkChunk: 1000,
  mix: true,

  async open(url) {
    const queue = new Queue('bench', url);
    await queue.isReady();
    return {
      add: (task, data, opts) => queue.add(task, data, opts || {}),
      addBulk: (task, items) =>
        queue.addBulk(items.map(({ data, opts }) => ({ name: task, data, opts }))),
      close: () => queue.close(),
    };
  },

  /** Bull's options for a mix job: priority 1 is the highest; 0 leaves it unprioritised. */
  mixOptions(spec) {
    const opts = { attempts: 2 };
    if (spec.priority) opts.priority = spec.priority;
    if (spec.delayMs) opts.delay = spec.delayMs;
    return opts;
  },

  async work(url) {
    const queue = new Queue('bench', url);
    queue.on('error', () => {});
    // '*' takes every job name; one processor, so the concurrency is not summed over names.
    queue.process('*', CONCURRENCY, (job) => handle(job.name, job.data, job.attemptsMade + 1));
    await queue.isReady();
  },
};
