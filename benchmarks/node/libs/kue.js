'use strict';
// Kue 0.11: plain commands in MULTI blocks, a BLPOP per waiting worker slot.
const kue = require('kue');
const { handle } = require('../jobs');

const CONCURRENCY = 200;

function save(job) {
  return new Promise((resolve, reject) => job.save((err) => (err ? reject(err) : resolve())));
}

module.exports = {
  version: require('kue/package.json').version,
  bulkChunk: 0,
  mix: false,

  async open(url) {
    const queue = kue.createQueue({ prefix: 'q', redis: url });
    return {
      add: (task, data) => save(queue.create(task, data)),
      close: () => new Promise((resolve) => queue.shutdown(1000, () => resolve())),
    };
  },

  async work(url, mode) {
    const queue = kue.createQueue({ prefix: 'q', redis: url });
    queue.on('error', () => {});
    queue.process(mode, CONCURRENCY, (job, ctx, cb) => {
      handle(mode, job.data, 1).then((result) => cb(null, result), cb);
    });
  },
};
