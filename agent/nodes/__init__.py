"""Graph nodes, grouped by what they serve."""
