"""Where a partition's state lives in the stream worker: hot entries in memory, closed
windows on local disk (RocksDB).

A unit's device entry (dedup ring, open windows) is touched by nearly every uplink; its
closed windows are read only when a late reading corrects one or a derived window (8 h,
24 h, day, Lden) is computed, and they are kept for the correction horizon plus two
days: 200+ per unit. In Python dicts they would cost ~80 kB per unit (a day of hours for
100,000 units projects to 7.6 GiB), so they go to a RocksDB database per partition,
the way Kafka Streams and Quix Streams keep large state. The changelog topics stay the
source of truth: the database is rebuilt from them when a partition is assigned and
deleted when it is revoked, so nothing on disk has to survive a crash.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from rocksdict import BlockBasedOptions, Options, Rdict, WriteOptions

COLD = "/"  # closed-window keys are "<dev_eui>/<size_s>/<start>"; device keys have none


def _options() -> Options:
    """Small memtables and no block cache: the point is a low RSS (reads come from the
    OS page cache). A Bloom filter answers lookups of hours without data unread."""
    opts = Options()
    opts.create_if_missing(True)
    opts.set_write_buffer_size(8 << 20)
    opts.set_max_write_buffer_number(2)
    table = BlockBasedOptions()
    table.disable_cache()
    table.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(table)
    return opts


class TieredState(MutableMapping[str, Any]):
    """A partition's state mapping: device entries in a dict, closed windows (string
    values) in RocksDB under `path`, which is created empty and removed by `close`."""

    def __init__(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self.path = path
        self.hot: dict[str, Any] = {}
        self.cold = Rdict(str(path), _options())
        no_wal = WriteOptions()
        no_wal.disable_wal = True  # the changelog is the durable copy
        self.cold.set_write_options(no_wal)

    def _tier(self, key: str) -> Any:
        return self.cold if COLD in key else self.hot

    def __getitem__(self, key: str) -> Any:
        value = self._tier(key).get(key)
        if value is None:
            raise KeyError(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        value = self._tier(key).get(key)
        return default if value is None else value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._tier(key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._tier(key)[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        del self._tier(key)[key]

    def __iter__(self) -> Iterator[str]:
        yield from self.hot
        yield from self.cold.keys()

    def __len__(self) -> int:
        """Counted, not tracked (a lookup per write to keep a count): only logs and the
        benchmark ask."""
        return len(self.hot) + sum(1 for _ in self.cold.keys())

    def close(self) -> None:
        self.cold.close()
        shutil.rmtree(self.path, ignore_errors=True)


def partition_dir(root: Path, partition: int) -> Path:
    """This process's database directory for a partition."""
    return root / f"{os.getpid()}-p{partition}"


def remove_orphans(root: Path) -> None:
    """Delete databases left by worker processes that are gone (killed, crashed)."""
    if not root.is_dir():
        return
    for path in root.iterdir():
        pid = path.name.split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(path, ignore_errors=True)
