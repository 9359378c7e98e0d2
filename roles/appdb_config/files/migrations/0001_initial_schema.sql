-- 0001: application configuration schema for the financial screener.
-- Applied by stratdata.pi_cluster.appdb_migrations in ONE transaction with its ledger row.
-- Never edit an applied migration: add a new NNNN_*.sql file instead (checksums are verified).

CREATE SCHEMA IF NOT EXISTS financial_screener;

-- Exchange groups: a set of exchanges that trade in one time zone (used to schedule collection).
CREATE TABLE financial_screener.exchange_groups (
    group_name  text        PRIMARY KEY CHECK (group_name ~ '^[a-z0-9][a-z0-9_-]*$'),
    timezone    text        NOT NULL CHECK (timezone <> ''),
    exchanges   text[]      NOT NULL CHECK (cardinality(exchanges) > 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE financial_screener.exchange_groups IS
    'Exchange groups with their IANA time zone; managed by stratdata.pi_cluster.appdb_dag_config';

-- Per-DAG job configuration, read at run time by the DAGs (one mapped pod per enabled row).
CREATE TABLE financial_screener.dag_configuration (
    dag_id          text        NOT NULL CHECK (dag_id ~ '^[A-Za-z0-9_.-]+$'),
    job_name        text        NOT NULL CHECK (job_name ~ '^[a-z0-9][a-z0-9_-]*$'),
    exchanges       text[]      NOT NULL CHECK (cardinality(exchanges) > 0),
    cpu_request     text        NOT NULL,
    memory_request  text        NOT NULL,
    cpu_limit       text        NULL,
    memory_limit    text        NULL,
    batch_size      integer     NOT NULL CHECK (batch_size > 0),
    enabled         boolean     NOT NULL DEFAULT true,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, job_name)
);

COMMENT ON TABLE financial_screener.dag_configuration IS
    'Kubernetes job configuration per (dag_id, job_name); managed by stratdata.pi_cluster.appdb_dag_config';
