"""Grafana dashboards per living lab, their provisioning, and the static council report.

Dashboards are code (grafana-foundation-sdk), generated from the lab registry; every
panel query is ClickHouse SQL for the `grafana-clickhouse-datasource` plugin, and the
report runs the same SQL so the two never disagree.
"""
