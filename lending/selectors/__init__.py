"""Every read of ``lending``, one module per sub-domain; the APIs and the web pages call the same
functions, and no query is written in a view or an API module
(``tests/test_reads_in_selectors.py`` holds them to it).

- ``programs``: which programs a user may see, the program list and detail with their figures;
- ``dashboard``: a program's dashboard (financed, DPD buckets, agent exposure), its chart series
  and its CSV exports;
- ``credit``: credit lines a user may see, an agent's grade and outlook, score history, grade
  mix, the line-proposal queue, the stored models;
- ``loans``: loans and repayments a user may see, financeable orders, what a loan's page shows;
- ``reviews``: the review queue, a case, its SLA and the agent's history;
- ``audit``: the audit trail with names for the ids it holds;
- ``ledger``: loan balances, a loan's journal lines, money aggregates in cents;
- ``goods``: tripartite goods holds and releases, release breaches and guarantee claims a
  person (or an enterprise's system) may see.

Each read is a fixed number of queries whatever the number of rows (aggregates and
``select_related`` in the database); ``tests/web/test_query_counts.py`` measures the pages.
"""
