"""Read-only analyst access on a ClickHouse server: one role per lab, and row policies so
a municipality's analyst sees only their own lab's rows.

chDB has no access control (one process, one user); this SQL is for servers. The
dead-letter table is not granted to lab analysts: it holds raw input of every lab.
"""

from __future__ import annotations

from livinglab.registry import Registry

LAB_TABLES = ("uplinks", "readings", "aggregates", "alerts")


def _ident(name: str) -> str:
    return "`" + name.replace("`", "") + "`"


def analyst_grants(registry: Registry, database: str = "default", lab: str | None = None) -> str:
    """SQL that creates `analyst` (all labs, read-only) and `analyst_<lab>` roles."""
    db = _ident(database)
    labs = [registry.lab(lab)] if lab else list(registry.labs)
    out = [
        "-- Read-only analyst roles for the living-lab store (run as an admin user).",
        "CREATE ROLE IF NOT EXISTS analyst;",
        f"GRANT SELECT ON {db}.* TO analyst;",
    ]
    # Once a table has row policies, roles without one may see nothing: say "all rows".
    out += [
        f"CREATE ROW POLICY IF NOT EXISTS all_labs ON {db}.{table} FOR SELECT USING 1 TO analyst;"
        for table in LAB_TABLES
    ]
    for entry in labs:
        role = _ident(f"analyst_{entry.id.replace('-', '_')}")
        out.append(f"\n-- {entry.name}: sees only lab = '{entry.id}'")
        out.append(f"CREATE ROLE IF NOT EXISTS {role};")
        for table in LAB_TABLES:
            policy = _ident(f"lab_{entry.id.replace('-', '_')}")
            out.append(f"GRANT SELECT ON {db}.{table} TO {role};")
            out.append(
                f"CREATE ROW POLICY IF NOT EXISTS {policy} ON {db}.{table} "
                f"FOR SELECT USING lab = '{entry.id}' TO {role};"
            )
    out.append(
        "\n-- Give a person a lab role, e.g.:\n"
        "-- CREATE USER IF NOT EXISTS jdevries IDENTIFIED WITH sha256_password BY '...'\n"
        "--     DEFAULT ROLE analyst_zoetermeer SETTINGS readonly = 1;\n"
        "-- GRANT analyst_zoetermeer TO jdevries;"
    )
    return "\n".join(out) + "\n"
