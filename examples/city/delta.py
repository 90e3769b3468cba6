"""Delta-apply function of the city example."""
