-- 0003: the DAGs' database user may read the configuration.
-- The migrations run as the superuser (appdb_config_login_user, `postgres`), so the schema and its
-- tables belong to it; the DAGs connect as the application user (Airflow connection `appdb`), which
-- the Bitnami chart makes the OWNER of the database -- not of this schema. Without these grants
-- load_jobs fails with "permission denied for schema financial_screener".
-- The grantee is the owner of the current database (the chart's auth.username), so no role name is
-- repeated here. Read-only: the DAGs never write the configuration.
DO $$
DECLARE
    app_user name := (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database());
BEGIN
    IF app_user = current_user THEN
        RETURN;  -- the migrating role owns the database: it owns the schema already
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA financial_screener TO %I', app_user);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA financial_screener TO %I', app_user);
    -- tables created by later migrations (run by the same role) are readable too
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA financial_screener GRANT SELECT ON TABLES TO %I',
                   app_user);
END
$$;
