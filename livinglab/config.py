"""Runtime settings from flags and environment; unset means the embedded stack."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_KAFKA = "LIVINGLAB_KAFKA"
ENV_CLICKHOUSE = "LIVINGLAB_CLICKHOUSE"
ENV_REGISTRY = "LIVINGLAB_REGISTRY"
ENV_DATA_DIR = "LIVINGLAB_DATA_DIR"
ENV_PARTITIONS = "LIVINGLAB_PARTITIONS"
ENV_LATENESS = "LIVINGLAB_LATENESS_S"
ENV_HORIZON = "LIVINGLAB_HORIZON_S"
ENV_RETENTION = "LIVINGLAB_RETENTION_DAYS"


@dataclass(frozen=True)
class Settings:
    kafka: str | None  # host:port list of an external cluster, None = start Tansu
    clickhouse: str | None  # clickhouse://user:pw@host:8123/db, None = chDB under data_dir
    data_dir: Path
    registry: Path | None
    partitions: int
    lateness_s: int
    horizon_s: int = 7 * 86400  # how late a reading may still correct its closed windows
    retention_days: int | None = None  # raw readings and uplinks; None = keep for ever

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Flags given on the command line (non-None overrides) win over the environment."""
        env = os.environ
        values: dict[str, object] = {
            "kafka": env.get(ENV_KAFKA) or None,
            "clickhouse": env.get(ENV_CLICKHOUSE) or None,
            "data_dir": Path(env.get(ENV_DATA_DIR, "data")),
            "registry": Path(env[ENV_REGISTRY]) if env.get(ENV_REGISTRY) else None,
            "partitions": int(env.get(ENV_PARTITIONS, "4")),
            "lateness_s": int(env.get(ENV_LATENESS, "900")),
            "horizon_s": int(env.get(ENV_HORIZON, str(7 * 86400))),
            "retention_days": int(env[ENV_RETENTION]) if env.get(ENV_RETENTION) else None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["data_dir"], str):
            values["data_dir"] = Path(values["data_dir"])
        if isinstance(values["registry"], str):
            values["registry"] = Path(values["registry"])
        return cls(**values)  # type: ignore[arg-type]

    def env(self) -> dict[str, str]:
        """The same settings as environment variables, for child processes."""
        out = {
            ENV_DATA_DIR: str(self.data_dir.resolve()),
            ENV_PARTITIONS: str(self.partitions),
            ENV_LATENESS: str(self.lateness_s),
            ENV_HORIZON: str(self.horizon_s),
        }
        if self.kafka:
            out[ENV_KAFKA] = self.kafka
        if self.clickhouse:
            out[ENV_CLICKHOUSE] = self.clickhouse
        if self.registry:
            out[ENV_REGISTRY] = str(self.registry.resolve())
        if self.retention_days is not None:
            out[ENV_RETENTION] = str(self.retention_days)
        return out
