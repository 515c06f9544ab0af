"""NICE: target a non-differentiable metric with the policy gradient of the metric as the query direction."""
