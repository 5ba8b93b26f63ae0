"""Credit scoring: features from the platform's own history, the scorecard, training, synthetic data.

- ``features``: the credit features of every line (agent x program) as of a date, in SQL.
- ``scorecard``: binning, weights of evidence, logistic regression, grades, reason codes, metrics.
- ``scores``: a feature frame scored by a scorecard (used by the nightly job and the API alike).
- ``training``: the training set from history, the time-based hold-out, storing and promoting.
- ``generator`` (with ``synthetic`` and ``history_rows``): a synthetic history with a known ground
  truth, for the tests, the benchmark and the demo.
- ``bulk``: many rows of one model written with ``COPY`` (PostgreSQL) or multi-row ``INSERT``.
"""
