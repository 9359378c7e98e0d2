-- 0002: keep updated_at current on every UPDATE, whoever writes the row.

CREATE OR REPLACE FUNCTION financial_screener.touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER dag_configuration_touch_updated_at
    BEFORE UPDATE ON financial_screener.dag_configuration
    FOR EACH ROW EXECUTE FUNCTION financial_screener.touch_updated_at();

CREATE TRIGGER exchange_groups_touch_updated_at
    BEFORE UPDATE ON financial_screener.exchange_groups
    FOR EACH ROW EXECUTE FUNCTION financial_screener.touch_updated_at();

-- Lets the DAGs select the enabled jobs of one DAG without scanning the table.
CREATE INDEX dag_configuration_enabled_idx
    ON financial_screener.dag_configuration (dag_id) WHERE enabled;
