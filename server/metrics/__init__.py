"""Metrics: the evaluator's operational counters and the per-node accuracy collector.

``operational`` holds the counters and histograms that the run path updates;
``collector`` turns stored scores into Prometheus samples at scrape time, reading only
(a scrape never grades or writes).
"""
