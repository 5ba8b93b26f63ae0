"""What the benchmarks share.

- ``db``: the bench's own PostgreSQL database, Django set up on it, the app's environment, Redis.
- ``processes``: gunicorn and other child processes in their own group, threads released at
  once, time bounds.
- ``http``: the lean keep-alive load generator and a one-shot request.
- ``cpu``: CPU time by process (app, PostgreSQL, client, the rest) and what backends wait on.
- ``seeding``: a program's parties (bank, agents, relationships, credit lines, users, tokens).
- ``books``: the checks that the books are right after a run.
- ``report``: the environment, percentiles and the JSON file.
"""
