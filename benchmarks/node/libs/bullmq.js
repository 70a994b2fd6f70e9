'use strict';
// BullMQ (the Node original): Lua scripts over lists, sorted sets and streams.
const { Queue, Worker } = require('bullmq');
const { handle, redisOptions } = require('../jobs');

const CONCURRENCY = 200;

module.exports = {
  version: require('bullmq/package.json').version,
  bulkChunk: 1000,
  mix: true,

  async open(url) {
    const queue = new Queue('bench', { connection: redisOptions(url) });
    await queue.waitUntilReady();
    return {
      add: (task, data, opts) => queue.add(task, data, opts),
      addBulk: (task, items) =>
        queue.addBulk(items.map(({ data, opts }) => ({ name: task, data, opts }))),
      close: () => queue.close(),
    };
  },

  /** BullMQ's options for a mix job: priority 0 is "none", 1 the highest. */
  mixOptions(spec) {
    const opts = { priority: spec.priority, attempts: 2 };
    if (spec.delayMs) opts.delay = spec.delayMs;
    return opts;
  },

  async work(url) {
    const processor = (job) => handle(job.name, job.data, job.attemptsMade + 1);
    const worker = new Worker('bench', processor, {
      connection: redisOptions(url),
      concurrency: CONCURRENCY,
    });
    worker.on('error', () => {});
    await worker.waitUntilReady();
  },
};
