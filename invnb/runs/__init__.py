"""Long runs: a resumable per-item result store, serial or Dask execution, provenance."""

from invnb.runs.cluster import (
    check_shared_storage,
    close_clients,
    connect,
    cuda_device_count,
    executor_for,
    start_local_cluster,
)
from invnb.runs.provenance import code_fingerprint, config_hash, git_commit
from invnb.runs.store import (
    CorruptItemError,
    CorruptItemWarning,
    Record,
    ResultStore,
    RunResult,
)
from invnb.runs.tasks import SCHEDULER_ENV, ItemTask, run_items, worker_cached

__all__ = [
    "CorruptItemError", "CorruptItemWarning", "ItemTask", "Record", "ResultStore", "RunResult",
    "SCHEDULER_ENV", "check_shared_storage", "close_clients", "code_fingerprint", "config_hash", "connect",
    "cuda_device_count", "executor_for", "git_commit", "run_items", "start_local_cluster", "worker_cached",
]
