"""Demo data: a bank, two core enterprises, their agents, six months of orders, and logins;
apart from them, the synthetic history the credit scorecard learns from.

Design:
- ``build.demo_build`` creates everything through the real services (``enterprise_create``,
  ``agent_create``, ``orders_ingest`` on the bulk channel), so the demo runs the production code
  paths and cannot hold rows those services would refuse.
- Deterministic for a seed: each part draws from its own ``random.Random(f"{seed}:{part}")``, so
  a part added later leaves the data of the others unchanged. The parts: ``parties`` (enterprises
  and agents), ``orders``, ``programs`` (programs, credit lines and the first loans), ``logins``
  (users, tokens and the credentials file), ``tripartite`` (the machinery maker's program under
  a tripartite agreement: deposits, releases, a breach and a claim), ``history`` (the scorecard's synthetic history, with
  ``history_plan`` and ``history_rows``); ``data`` holds what they are made of, ``contents``
  counts what was seeded.
  Order dates count back from ``today``, a parameter.
- Integration credentials exist in plaintext only when issued, so the credentials file is written
  from the ``DemoData`` in hand. When the demo already exists, ``demo_refresh`` rotates them and
  resets the demo users' passwords, so a rewritten file always matches the database.
- Demo users are recognised by their e-mail domain; a refresh touches only them.
- The scorecard's history (300 synthetic dealers over 18 months, ``demo_credit_seed``) belongs to
  an enterprise and a program of its own, so the demo's programs and dashboards show the demo's
  50 agents and 5,000 orders only. ``demo_contents`` counts both, as the README states them.
- Money is ``Decimal`` throughout; floats only weight random choices.
"""
