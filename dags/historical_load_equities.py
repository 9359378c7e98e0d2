"""historical_load_equities: load the equities' price history, one Kubernetes pod per configured job.

The jobs are rows of ``financial_screener.dag_configuration`` (dag_id = this DAG), seeded by the Ansible
role ``appdb_config``. They are read AT RUN TIME by the ``load_jobs`` task (PostgresHook, connection id
from the Variable ``pi_cluster_appdb_conn_id``, default ``appdb``) -- parsing this file makes no database
query. Each enabled row becomes one mapped KubernetesPodOperator with that row's exchanges, batch size and
container resources (requests/limits -> V1ResourceRequirements). When every job succeeded, the asset
``appdb://financial_screener/historical_prices`` is updated, which schedules ``calculate_indicators``.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from pi_cluster_dags.pods import ScreenerPodOperator, resources_from_row
from pi_cluster_dags.appdb import load_rows
from pi_cluster_dags.settings import IMAGE, NAMESPACE, SCHEMA

DAG_ID = "historical_load_equities"
HISTORICAL_PRICES = Asset("appdb://financial_screener/historical_prices")


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["financial-screener", "equities", "historical"],
    default_args={"owner": "stratdata", "retries": 1, "retry_delay": timedelta(minutes=5)},
    doc_md=__doc__,
)
def historical_load_equities():
    @task
    def load_jobs() -> list[dict]:
        """Read the enabled jobs of this DAG from the application database (run time, not parse time)."""
        rows = load_rows(
            "SELECT job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, batch_size "
            "FROM %s.dag_configuration WHERE dag_id = %%s AND enabled ORDER BY job_name" % SCHEMA,
            parameters=(DAG_ID,),
            empty_message="no enabled jobs for %s in %s.dag_configuration" % (DAG_ID, SCHEMA),
        )
        jobs = []
        for job_name, exchanges, cpu_request, memory_request, cpu_limit, memory_limit, batch_size in rows:
            exchanges = list(exchanges)
            jobs.append(
                {
                    "name": "hist-load-%s" % job_name.replace("_", "-"),
                    "arguments": ["load-history", "--job", job_name, "--exchanges", ",".join(exchanges),
                                  "--batch-size", str(batch_size)],
                    "env_vars": {"JOB_NAME": job_name, "EXCHANGES": ",".join(exchanges),
                                 "BATCH_SIZE": str(batch_size)},
                    "labels": {"app.kubernetes.io/part-of": "financial-screener", "job-name": job_name},
                    "container_resources": resources_from_row(cpu_request, memory_request, cpu_limit, memory_limit),
                }
            )
        return jobs

    load = ScreenerPodOperator.partial(
        task_id="load_exchange_history",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["financial-screener"],
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        startup_timeout_seconds=600,
        map_index_template="{{ task.name }}",
    ).expand_kwargs(load_jobs())

    @task(outlets=[HISTORICAL_PRICES])
    def publish_history() -> str:
        """Runs only when every mapped job succeeded; its outlet schedules calculate_indicators."""
        return "historical prices loaded"

    load >> publish_history()


historical_load_equities()
