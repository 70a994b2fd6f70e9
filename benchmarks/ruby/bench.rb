# frozen_string_literal: true

# Sidekiq's side of a benchmark run, driven by harness/foreign.py, with the commands of
# node/bench.js:
#
#   ruby bench.rb sidekiq check | enqueue URL N | concurrent URL N THREADS | bulk URL N
#                         fill URL TASK N | latency URL RATE TOTAL | worker URL MODE
#
# Every command but `worker` prints one JSON line, the same results the Python adapters give.
require "json"
require "sidekiq"
require_relative "probe"

WARMUP = 20
CHUNK = 1000
# Worker threads per process: Sidekiq's default for no-op jobs, 100 for jobs that sleep (as
# the threaded Python peers run them).
CONCURRENCY = { "noop" => 10, "sleep" => 100 }.freeze
CLASSES = { "noop" => "NoopJob", "sleep" => "SleepJob" }.freeze

def payload(index)
  { "i" => index, "t" => Probe.now }
end

def monotonic
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def push(task, data)
  Sidekiq::Client.push("class" => CLASSES.fetch(task), "args" => [data])
end

def push_bulk(task, datas)
  Sidekiq::Client.push_bulk("class" => CLASSES.fetch(task), "args" => datas.map { |d| [d] })
end

def enqueue(count)
  (1..WARMUP).each { |i| push("noop", payload(-i)) }
  t0 = monotonic
  count.times { |i| push("noop", payload(i)) }
  { status: "ok", value: count / (monotonic - t0) }
end

def concurrent(count, threads)
  (1..WARMUP).each { |i| push("noop", payload(-i)) }
  t0 = monotonic
  workers = (0...threads).map do |k|
    Thread.new { k.step(count - 1, threads) { |i| push("noop", payload(i)) } }
  end
  workers.each(&:join)
  { status: "ok", value: count / (monotonic - t0), producers: threads, threads: true }
end

def bulk(count)
  push_bulk("noop", (1..19).map { |i| payload(-i) })
  batches = (0...count).each_slice(CHUNK).map { |slice| slice.map { |i| payload(i) } }
  t0 = monotonic
  batches.each { |batch| push_bulk("noop", batch) }
  { status: "ok", value: count / (monotonic - t0), chunk: CHUNK }
end

def fill(task, count)
  return { status: "n/a", detail: "no equivalent options" } unless CLASSES.key?(task)

  (0...count).each_slice(CHUNK) { |slice| push_bulk(task, slice.map { |i| payload(i) }) }
  { status: "ok", jobs: count }
end

def latency(rate, total)
  (1..5).each { |i| push("noop", payload(-i)) } # never a measured index
  puts({ warm: true }.to_json)
  $stdout.flush
  $stdin.gets
  start = monotonic
  total.times do |i|
    delay = start + (i / rate) - monotonic
    sleep delay if delay.positive?
    push("noop", payload(i))
  end
  { status: "ok", achieved_rate: total / (monotonic - start) }
end

def worker(url, mode)
  require "sidekiq/cli"
  Probe.start(url) # once the library is loaded, as harness/worker_main.py
  cli = Sidekiq::CLI.instance
  cli.parse(["-c", CONCURRENCY.fetch(mode).to_s, "-r", File.join(__dir__, "jobs.rb")])
  # After the concurrency is known: the server's pool is sized from it (concurrency + 5).
  Sidekiq.configure_server { |config| config.redis = { url: url } }
  Sidekiq.logger.level = Logger::WARN # a log line per job start and end otherwise
  cli.run
end

def main(argv)
  _lib, command, url, *rest = argv
  return { status: "ok", version: Sidekiq::VERSION, ruby: RUBY_VERSION } if command == "check"

  # A client's pool holds 5 connections by default; an application with more producer threads
  # sizes it to them (Sidekiq's advice), or they time out waiting for one (1 s).
  size = command == "concurrent" ? [rest[1].to_i, 5].max : 5
  Sidekiq.configure_client { |config| config.redis = { url: url, size: size } }
  case command
  when "enqueue" then enqueue(rest[0].to_i)
  when "concurrent" then concurrent(rest[0].to_i, rest[1].to_i)
  when "bulk" then bulk(rest[0].to_i)
  when "fill" then fill(rest[0], rest[1].to_i)
  when "latency" then latency(rest[0].to_f, rest[1].to_i)
  when "worker" then worker(url, rest[0])
  else raise ArgumentError, "unknown command #{command}"
  end
end

begin
  result = main(ARGV)
  puts result.to_json if result.is_a?(Hash)
rescue StandardError => e
  puts({ status: "error", detail: "#{e.class}: #{e.message}"[0, 300] }.to_json)
  exit 1
end
