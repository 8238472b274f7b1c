"""The eval suite: datasets, runner, assertions, metrics, reports and the benchmark.

``streaming-engineer eval`` drives the same compiled graph every front end
uses, one fresh thread per case, and exits non-zero when a metric falls
below ``evals/thresholds.yaml``; ``streaming-engineer bench`` measures speed
on the current machine (speed is measured there, never asserted by tests).
"""
