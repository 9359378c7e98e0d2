"""data_collection: collect the day's prices after the markets close, one pod per exchange group.

The exchange groups (name, IANA time zone, exchanges) are rows of ``financial_screener.exchange_groups``,
seeded by the Ansible role ``appdb_config``; the ``load_groups`` task reads them AT RUN TIME through the
connection named by the Variable ``pi_cluster_appdb_conn_id`` (default ``appdb``). Parsing this file
makes no database query. Each group's pod gets the group's exchanges and time zone.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from pi_cluster_dags.pods import ScreenerPodOperator, resources_from_row
from pi_cluster_dags.appdb import load_rows
from pi_cluster_dags.settings import IMAGE, NAMESPACE, SCHEMA

DAILY_PRICES = Asset("appdb://financial_screener/daily_prices")


@dag(
    dag_id="data_collection",
    # 22:30 UTC on weekdays: after the close of every configured market (New York closes 21:00 UTC in winter).
    schedule="30 22 * * 1-5",
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["financial-screener", "collection"],
    default_args={"owner": "stratdata", "retries": 2, "retry_delay": timedelta(minutes=10)},
    doc_md=__doc__,
)
def data_collection():
    @task
    def load_groups() -> list[dict]:
        """Read the exchange groups from the application database (run time, not parse time)."""
        rows = load_rows("SELECT group_name, timezone, exchanges FROM %s.exchange_groups ORDER BY group_name" % SCHEMA,
                         empty_message="no exchange groups in %s.exchange_groups" % SCHEMA)
        return [
            {
                "name": "collect-%s" % name.replace("_", "-"),
                "arguments": ["collect-daily", "--group", name, "--exchanges", ",".join(exchanges),
                              "--date", "{{ ds }}"],
                "env_vars": {"EXCHANGE_GROUP": name, "TZ": timezone, "EXCHANGES": ",".join(exchanges)},
                "labels": {"app.kubernetes.io/part-of": "financial-screener", "exchange-group": name},
            }
            for name, timezone, exchanges in rows
        ]

    ScreenerPodOperator.partial(
        task_id="collect_daily_prices",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["financial-screener"],
        container_resources=resources_from_row("250m", "512Mi"),
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        outlets=[DAILY_PRICES],
        map_index_template="{{ task.name }}",
    ).expand_kwargs(load_groups())


data_collection()
