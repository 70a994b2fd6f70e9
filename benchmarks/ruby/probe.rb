# frozen_string_literal: true

# The benchmark's completion probe, as harness/probe.py writes it: jobs call Probe.done (no
# Redis I/O on the job's path) and a thread publishes the totals to benchprobe:* every 5 ms.
require "redis"

# redis-rb 4.8 warns on stderr at every call Sidekiq 6.4 makes the old way: noise, and a cost.
Redis.silence_deprecations = true

module Probe
  READY_KEY = "benchprobe:ready"
  DONE_KEY = "benchprobe:done"
  LAT_KEY = "benchprobe:lat"
  FLUSH_S = 0.005
  LOCK = Mutex.new
  @count = 0
  @first = 0.0
  @last = 0.0
  @lat = []

  # Wall clock in seconds (Python's time.time()).
  def self.now
    Process.clock_gettime(Process::CLOCK_REALTIME)
  end

  def self.done(enqueued_at, index)
    t = now
    LOCK.synchronize do
      @first = t if @count.zero?
      @count += 1
      @last = t
      @lat << "#{index} #{t - enqueued_at}"
    end
  end

  # Stamp this process ready, then publish the counters until it exits.
  def self.start(url)
    client = Redis.new(url: url)
    pid = Process.pid.to_s
    client.hset(READY_KEY, pid, now.to_s)
    Thread.new do
      sent = -1
      loop do
        sleep FLUSH_S
        count, first, last, lat = LOCK.synchronize do
          taken = @lat
          @lat = []
          [@count, @first, @last, taken]
        end
        next if count == sent && lat.empty?

        client.pipelined do |pipe|
          pipe.hset(DONE_KEY, pid, "#{count} #{last} #{first}")
          pipe.rpush(LAT_KEY, lat) unless lat.empty?
        end
        sent = count
      end
    end
  end
end
