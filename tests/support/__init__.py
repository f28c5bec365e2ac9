"""What several test modules (and bench/) share: brokers, processes, builders, fakes."""
