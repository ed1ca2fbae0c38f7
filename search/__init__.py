"""Architecture search over HarDNets: space, evaluation, Pareto ranking, objectives, emit."""
