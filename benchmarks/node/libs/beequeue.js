'use strict';
// bee-queue 2: one Lua script per add, lists and a hash per queue; one job type per queue.
const Queue = require('bee-queue');
const { handle, redisOptions } = require('../jobs');

const CONCURRENCY = 200;

module.exports = {
  version: require('bee-queue/package.json').version,
  bulkChunk: 1000,
  mix: false,

  async open(url) {
    const queue = new Queue('bench', { redis: redisOptions(url), isWorker: false });
    await queue.ready();
    const job = (task, data) => queue.createJob({ task, data });
    return {
      add: (task, data) => job(task, data).save(),
      addBulk: (task, items) => queue.saveAll(items.map(({ data }) => job(task, data))),
      close: () => queue.close(),
    };
  },

  async work(url) {
    const queue = new Queue('bench', { redis: redisOptions(url) });
    queue.on('error', () => {});
    queue.process(CONCURRENCY, (job) => handle(job.data.task, job.data.data, 1));
    await queue.ready();
  },
};
