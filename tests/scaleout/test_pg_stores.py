"""The registry and store suites again, on PostgreSQL: the same tests as on SQLite, the same guarantees.

Left out are only the tests of SQLite itself (its WAL mode and busy timeout, a raw ``sqlite3``
connection to the file) and those that start other processes on ``$YTAP_HOME/ytap.db``; each has a
PostgreSQL counterpart in tests/scaleout/test_postgres.py.
"""

from __future__ import annotations

import pytest

from tests.core import test_assets, test_jobs
from tests.core.test_services import (  # noqa: F401 - the budget's holds, on PostgreSQL
    test_scene_budget_hold_of_a_job_that_ended_unrecorded_is_dropped_at_start,
    test_scene_budget_holds_across_concurrent_jobs_of_one_video,
    test_scene_budget_spent_by_failed_paid_attempts_counts,
)
from tests.reliability import test_concurrency
from tests.scaleout.adopt import adopt
from tests.tools import test_cache, test_voices

pytestmark = pytest.mark.usefixtures("postgres_registry")

SQLITE_ONLY = {
    "test_registry_uses_wal_and_a_busy_timeout": "SQLite's journal mode; PostgreSQL's lock: test_postgres.py",
    "test_registry_interrupted_jobs_reported_failed_after_restart": "edits the SQLite file with sqlite3; "
    "the same restart on PostgreSQL: test_postgres.py",
}
FILES_NAMED = {
    "test_jobs_failure_text_is_scrubbed_of_secrets": "reads ytap.db's bytes; on PostgreSQL: test_postgres.py",
}
FILE_CHECKS = {
    "test_voices_clone_speak_report_delete": "asserts ytap.db exists in YTAP_HOME; on PostgreSQL it does not",
}

adopt(test_assets, globals(), skip=SQLITE_ONLY)
adopt(test_jobs, globals(), skip=FILES_NAMED)
adopt(test_cache, globals(), skip={})
adopt(test_voices, globals(), skip=FILE_CHECKS)
adopt(test_concurrency, globals(), skip={
    "test_concurrency_fifty_calls_from_ten_clients_on_one_video": "server processes on $YTAP_HOME/ytap.db",
    "test_concurrency_two_server_processes_share_one_home": "server processes on $YTAP_HOME/ytap.db; on "
    "PostgreSQL, the replicas of tests/scaleout/test_temporal.py",
})
