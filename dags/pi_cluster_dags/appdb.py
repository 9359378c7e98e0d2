# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reference DAGs' row loader: one query on the application database, at task RUN time only.

The connection is the one named by the Airflow Variable ``pi_cluster_appdb_conn_id`` (settings.py); the Airflow
and provider imports happen inside the function so that parsing a DAG file never touches the database.
"""

from __future__ import annotations

from pi_cluster_dags.settings import APPDB_CONN_ID_DEFAULT, APPDB_CONN_ID_VAR


def load_rows(sql: str, parameters=None, empty_message: str = "the query returned no rows") -> list[tuple]:
    """Rows of ``sql`` (with ``parameters``); fails the task (no retry) with ``empty_message`` when there are none."""
    from airflow.exceptions import AirflowFailException
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Variable

    conn_id = Variable.get(APPDB_CONN_ID_VAR, default=APPDB_CONN_ID_DEFAULT)
    rows = PostgresHook(postgres_conn_id=conn_id).get_records(sql, parameters=parameters)
    if not rows:
        raise AirflowFailException(empty_message)
    return rows
