"""Names and defaults of the Airflow Variables the reference DAGs read -- at RUN time only.

Operator arguments use Jinja templates (``{{ var.value.get(name, default) }}``) that Airflow renders when
the task runs; task code calls ``Variable.get`` inside the task. Nothing here touches a database when a
DAG file is parsed. See dags/README.md for the table of Variables.
"""

from __future__ import annotations

# Airflow connection id (Postgres) of the application database holding financial_screener.*
APPDB_CONN_ID_VAR = "pi_cluster_appdb_conn_id"
APPDB_CONN_ID_DEFAULT = "appdb"

# Kubernetes namespace of the job pods.
JOBS_NAMESPACE_VAR = "pi_cluster_jobs_namespace"
JOBS_NAMESPACE_DEFAULT = "financial-screener"

# Container image of the screener jobs (loader, collector, indicators).
JOBS_IMAGE_VAR = "pi_cluster_jobs_image"
JOBS_IMAGE_DEFAULT = "ghcr.io/stratdata/financial-screener-jobs:1.0.0"

# "true" -> the pod tasks render and log their pod spec and return it instead of creating a pod
# (also switched on by the environment variable PI_CLUSTER_DAGS_DRY_RUN=true). For tests and dry runs.
DRY_RUN_VAR = "pi_cluster_dags_dry_run"
DRY_RUN_ENV = "PI_CLUSTER_DAGS_DRY_RUN"

SCHEMA = "financial_screener"


def var_template(name: str, default: str) -> str:
    """Jinja template that reads an Airflow Variable when the task runs (never at parse time)."""
    return "{{ var.value.get(%r, %r) }}" % (name, default)


IMAGE = var_template(JOBS_IMAGE_VAR, JOBS_IMAGE_DEFAULT)
NAMESPACE = var_template(JOBS_NAMESPACE_VAR, JOBS_NAMESPACE_DEFAULT)
