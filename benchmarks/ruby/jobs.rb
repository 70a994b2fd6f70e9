# frozen_string_literal: true

# The job classes Sidekiq's workers load (`-r`): each records its completion in the probe.
require "sidekiq"
require_relative "probe"

class NoopJob
  include Sidekiq::Worker

  def perform(data)
    Probe.done(data["t"], data["i"])
  end
end

class SleepJob
  include Sidekiq::Worker

  def perform(data)
    sleep 0.01
    Probe.done(data["t"], data["i"])
  end
end
