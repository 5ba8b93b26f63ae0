import pytest

# Shared helpers with asserts: rewritten like test modules, so a failure shows the values.
pytest.register_assert_rewrite("tests.reliability.workers")
