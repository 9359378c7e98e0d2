"""calculate_indicators: recompute technical indicators after each completed historical load.

Scheduled by the asset ``appdb://financial_screener/historical_prices``, which ``historical_load_equities``
updates when all of its jobs succeeded. One Kubernetes pod; image and namespace come from Airflow
Variables rendered at run time (see dags/README.md). Parsing this file makes no database query.

A run created by an asset event has no logical date and no data interval in Airflow 3 (so
``data_interval_start`` is undefined there): ``--since`` is the day the run was due, ``dag_run.run_after``,
which every run has (asset-triggered, manual or scheduled).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag

from pi_cluster_dags.pods import ScreenerPodOperator, resources_from_row
from pi_cluster_dags.settings import IMAGE, NAMESPACE, var_template

HISTORICAL_PRICES = Asset("appdb://financial_screener/historical_prices")
INDICATORS = Asset("appdb://financial_screener/indicators")


@dag(
    dag_id="calculate_indicators",
    schedule=[HISTORICAL_PRICES],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["financial-screener", "indicators"],
    default_args={"owner": "stratdata", "retries": 2, "retry_delay": timedelta(minutes=2)},
    doc_md=__doc__,
)
def calculate_indicators():
    ScreenerPodOperator(
        task_id="calculate_indicators",
        name="calculate-indicators",
        namespace=NAMESPACE,
        image=IMAGE,
        cmds=["financial-screener"],
        arguments=["calculate-indicators", "--since", "{{ dag_run.run_after | ds }}",
                   "--batch-size", var_template("pi_cluster_indicators_batch_size", "500")],
        container_resources=resources_from_row("500m", "1Gi"),
        labels={"app.kubernetes.io/part-of": "financial-screener"},
        get_logs=True,
        on_finish_action="delete_succeeded_pod",
        outlets=[INDICATORS],
    )


calculate_indicators()
