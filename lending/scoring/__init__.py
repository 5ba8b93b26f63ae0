"""Credit scoring: features from the platform's own history, the scorecard, training.

Computation only: the scoring modules read and compute, and write nothing but the rows handed to
``bulk``. The services use them (the nightly credit run, ``credit_model_train``), never the other
way round. The synthetic history the tests, the benchmark and the demo train on is in
``integrations.demo.history``.

- ``features``: the credit features of every line (agent x program) as of a date, in SQL.
- ``scorecard``: binning, weights of evidence, logistic regression, grades, reason codes, metrics.
- ``scores``: a feature frame scored by a scorecard (used by the nightly job and the API alike).
- ``training``: the training set from history, the time-based hold-out, the promotion rule.
- ``bulk``: many rows of one model written with ``COPY`` (PostgreSQL) or multi-row ``INSERT``.
"""
