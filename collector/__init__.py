"""Central collector: enrolls agents, ingests their reports, evaluates and serves results."""
