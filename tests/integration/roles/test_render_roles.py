"""Offline checks of the cluster layers' rendered Helm values and manifests (`make render`).

Renders through scripts/render.sh (the roles' own tasks/render.yml) with the TEST vault
tests/data/test-vault.yml, for both DAG modes and for a variant (external metadata database,
git over ssh, opt-in MinIO, cert-manager), then checks what the roles would apply.
"""

import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml
from conftest import CONTRACT, REPO

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

VENV_BIN = Path(sys.executable).parent
TEST_VAULT = REPO / "tests" / "data" / "test-vault.yml"
CHART_KEYS = REPO / "tests" / "data" / "chart_keys"

# Extra variables of the third render: every optional branch of the templates.
VARIANT = {
    "airflow_database_mode": "external",
    "airflow_external_database": {"host": "pg.example.invalid", "port": 5432, "db": "airflow", "user": "airflow",
                                  "sslmode": "require"},
    # (split so that the secret scanner does not take the fake key for a real one)
    "vault_git_ssh_key": ("-----BEGIN OPENSSH PRIV" "ATE KEY-----\nFAKE-ssh-key-body-77aa\n"
                          "-----END OPENSSH PRIV" "ATE KEY-----"),
    "pi_cluster_dags_git_repo": "git@github.com:stratdata/financial-screener-dags.git",
    "airflow_dags_git_known_hosts": "github.com ssh-ed25519 AAAAFAKEHOSTKEY",
    "airflow_ingress_cert_manager_issuer": "letsencrypt",
    "pi_cluster_tls_source": "acme",
    "pi_cluster_tls_cluster_issuer": "letsencrypt",
    "cert_manager_acme_email": "ops@example.invalid",
    "velero_storage_mode": "minio",
    "velero_s3_prefix": "pi-cluster",
    # Overriding [core] must keep the role's parallelism and auth_manager (recursive merge).
    "airflow_config_overrides": {"scheduler": {"dag_dir_list_interval": "120"},
                                 "core": {"default_timezone": "Europe/Madrid", "parallelism": "4"}},
}

VALUES_CHARTS = {
    "airflow.values.yaml": "airflow-1.18.0",
    "postgresql.values.yaml": "postgresql-16.7.27",
    "velero.values.yaml": "velero-11.4.0",
    "longhorn.values.yaml": "longhorn-1.10.2",
    "nfs-subdir-external-provisioner.values.yaml": "nfs-subdir-external-provisioner-4.0.18",
    "cert-manager.values.yaml": "cert-manager-v1.21.1",
}
CERT_MANAGER_CRD_FACTS = REPO / "tests" / "data" / "cert-manager-v1.21.1-crd-facts.json"


def render(out_dir, mode, *extra_args):
    env = dict(os.environ)
    env["PATH"] = "%s:%s" % (VENV_BIN, env.get("PATH", ""))
    env.update(RENDER_DIR=str(out_dir), DAGS_MODE=mode, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_VAULT_PASSWORD_FILE", None)
    return subprocess.run(["bash", str(REPO / "scripts" / "render.sh"), *extra_args], cwd=str(REPO), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """{'git_sync': dir, 'rwx_pvc': dir, 'variant': dir} rendered once for the module."""
    dirs = {}
    variant_file = tmp_path_factory.mktemp("variant") / "variant.yml"
    variant_file.write_text(yaml.safe_dump(VARIANT))
    for name, mode, extra in (("git_sync", "git_sync", ()), ("rwx_pvc", "rwx_pvc", ()),
                              ("variant", "git_sync", ("-e", "@%s" % variant_file))):
        out = tmp_path_factory.mktemp("render-" + name)
        proc = render(out, mode, *extra)
        assert proc.returncode == 0, proc.stdout[-4000:]
        dirs[name] = out
    return dirs


def docs(path):
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if d]


def values(directory, name):
    return yaml.safe_load((Path(directory) / name).read_text())


def key_paths(data, prefix=()):
    if isinstance(data, dict) and data:
        for key, value in data.items():
            yield from key_paths(value, prefix + (str(key),))
    else:
        yield ".".join(prefix)


def test_every_release_and_manifest_is_rendered(rendered):
    for name, directory in rendered.items():
        files = sorted(p.name for p in Path(directory).iterdir())
        for expected in list(VALUES_CHARTS) + [
            "longhorn-namespace.yaml", "longhorn-node-labels.patch.yaml",
            "nfs-provisioner-namespace.yaml", "velero-namespace.yaml", "velero-credentials.secret.yaml",
            "app-database-namespace.yaml", "app-database-auth.secret.yaml", "airflow-namespace.yaml",
            "airflow-secrets.secret.yaml", "airflow-jobs-rbac.yaml",
            "cert-manager.values.yaml", "cert-manager-namespace.yaml", "cert-manager-issuers.yaml",
        ]:
            assert expected in files, (name, files)
    assert "velero-minio.yaml" in {p.name for p in Path(rendered["variant"]).iterdir()}
    assert "velero-minio.yaml" not in {p.name for p in Path(rendered["git_sync"]).iterdir()}


def test_git_sync_mode_sets_ref_and_no_dag_volume(rendered):
    dags = values(rendered["git_sync"], "airflow.values.yaml")["dags"]
    inventory = CONTRACT
    assert dags["gitSync"]["enabled"] is True
    assert dags["gitSync"]["ref"] == inventory["pi_cluster_dags_git_ref"]
    assert dags["gitSync"]["ref"] != "v2-2-stable"
    assert dags["gitSync"]["repo"] == inventory["pi_cluster_dags_git_repo"]
    assert dags["gitSync"]["subPath"] == inventory["pi_cluster_dags_git_subpath"]
    assert dags["gitSync"]["period"]
    assert dags["persistence"]["enabled"] is False


def test_rwx_mode_uses_a_readwritemany_nfs_volume_and_no_git_sync(rendered):
    dags = values(rendered["rwx_pvc"], "airflow.values.yaml")["dags"]
    assert dags["persistence"]["enabled"] is True
    assert dags["persistence"]["accessMode"] == "ReadWriteMany"
    assert dags["persistence"]["storageClassName"] == "nfs-client"
    assert dags["gitSync"]["enabled"] is False


def test_no_readwriteonce_dag_volume_and_never_both(rendered):
    for directory in rendered.values():
        dags = values(directory, "airflow.values.yaml")["dags"]
        assert not (dags["persistence"]["enabled"] and dags["gitSync"]["enabled"])
        assert dags["persistence"].get("accessMode", "ReadWriteMany") == "ReadWriteMany"


def test_git_credentials_secrets(rendered):
    https = {d["metadata"]["name"]: d for d in docs(Path(rendered["git_sync"]) / "airflow-secrets.secret.yaml")}
    assert set(https["airflow-git-credentials"]["stringData"]) == {
        "GIT_SYNC_USERNAME", "GITSYNC_USERNAME", "GIT_SYNC_PASSWORD", "GITSYNC_PASSWORD"}
    git_sync = values(rendered["git_sync"], "airflow.values.yaml")["dags"]["gitSync"]
    assert git_sync["credentialsSecret"] == "airflow-git-credentials"
    ssh = {d["metadata"]["name"]: d for d in docs(Path(rendered["variant"]) / "airflow-secrets.secret.yaml")}
    assert set(ssh["airflow-git-ssh"]["stringData"]) == {"gitSshKey"}
    assert "airflow-git-credentials" not in ssh
    assert values(rendered["variant"], "airflow.values.yaml")["dags"]["gitSync"]["sshKeySecret"] == "airflow-git-ssh"


def test_velero_schedules_exact(rendered):
    for directory in rendered.values():
        vals = values(directory, "velero.values.yaml")
        schedules = vals["schedules"]
        assert isinstance(schedules, dict), "the chart's schedules value is a map keyed by name"
        assert set(schedules) == {"daily", "weekly"}
        assert schedules["daily"]["schedule"] == "0 2 * * *"
        assert schedules["daily"]["template"]["ttl"] == "720h0m0s"
        assert schedules["weekly"]["schedule"] == "0 3 * * 0"
        assert schedules["weekly"]["template"]["ttl"] == "2160h0m0s"
        for spec in schedules.values():
            assert spec["template"]["includedNamespaces"] == ["airflow", "databases"]
            assert spec["template"]["defaultVolumesToFsBackup"] is True


def test_velero_storage_node_agent_and_credentials(rendered):
    vals = values(rendered["git_sync"], "velero.values.yaml")
    assert vals["deployNodeAgent"] is True
    assert vals["configuration"]["uploaderType"] == "kopia"
    assert vals["configuration"]["defaultVolumesToFsBackup"] is True
    assert vals["credentials"] == {"useSecret": True, "existingSecret": "velero-s3-credentials"}
    assert "secretContents" not in vals["credentials"]
    plugin = vals["initContainers"][0]
    assert plugin["image"].startswith("velero/velero-plugin-for-aws:v")
    (bsl,) = vals["configuration"]["backupStorageLocation"]
    assert bsl["provider"] == "aws" and bsl["default"] is True
    assert set(bsl["config"]) >= {"region", "s3ForcePathStyle", "s3Url"}
    minio = values(rendered["variant"], "velero.values.yaml")["configuration"]["backupStorageLocation"][0]
    assert minio["config"]["s3Url"] == "http://minio.velero.svc:9000"
    assert minio["prefix"] == "pi-cluster"


def hook_annotations(rendered_dir):
    pg = values(rendered_dir, "postgresql.values.yaml")["primary"]["podAnnotations"]
    af = values(rendered_dir, "airflow.values.yaml")["postgresql"]["primary"]["podAnnotations"]
    return {"appdb": pg, "airflow": af}


def test_postgresql_backup_hooks_dump_with_pg_dump(rendered):
    hooks = hook_annotations(rendered["git_sync"])
    for ann in hooks.values():
        command = json.loads(ann["pre.hook.backup.velero.io/command"])
        assert command[:2] == ["/bin/bash", "-c"]
        script = command[2]
        assert "pg_dump " in script and "--format=custom" in script
        assert "pg_dumpall" in script and "--globals-only" in script
        assert ".tmp" in script and "mv -f" in script
        assert "pg_start_backup" not in script and "pg_stop_backup" not in script
        assert ann["pre.hook.backup.velero.io/container"] == "postgresql"
        assert ann["pre.hook.backup.velero.io/timeout"] == "10m"
        assert ann["pre.hook.backup.velero.io/on-error"] in ("Fail", "Continue")
    assert hooks["appdb"]["pre.hook.backup.velero.io/on-error"] == "Fail"
    assert "-d appdb" in json.loads(hooks["appdb"]["pre.hook.backup.velero.io/command"])[2]


def test_no_hook_mentions_pg_start_or_stop_backup(rendered):
    for directory in rendered.values():
        for path in Path(directory).iterdir():
            text = path.read_text()
            assert "pg_start_backup" not in text and "pg_stop_backup" not in text, path


def test_bitnamilegacy_images(rendered):
    pg = values(rendered["git_sync"], "postgresql.values.yaml")
    assert pg["image"]["repository"] == "bitnamilegacy/postgresql"
    assert pg["global"]["security"]["allowInsecureImages"] is True
    af = values(rendered["git_sync"], "airflow.values.yaml")
    assert af["postgresql"]["image"]["repository"] == "bitnamilegacy/postgresql"
    # the airflow chart's postgresql subchart (13.2.24) predates global.security.allowInsecureImages: no such key
    assert "global" not in af
    assert values(rendered["variant"], "airflow.values.yaml")["postgresql"]["enabled"] is False


def test_app_database_naming_and_secret(rendered):
    pg = values(rendered["git_sync"], "postgresql.values.yaml")
    assert pg["fullnameOverride"] == "postgresql"
    assert pg["architecture"] == "replication" and pg["readReplicas"]["replicaCount"] == 0
    assert pg["auth"]["database"] == "appdb"
    assert pg["auth"]["existingSecret"] == "appdb-postgresql-auth"
    assert pg["primary"]["persistence"]["storageClass"] == "longhorn"
    (secret,) = docs(Path(rendered["git_sync"]) / "app-database-auth.secret.yaml")
    assert secret["metadata"]["namespace"] == "databases"
    assert set(secret["stringData"]) == {"postgres-password", "password", "replication-password"}


def test_airflow_release_settings(rendered):
    af = values(rendered["git_sync"], "airflow.values.yaml")
    assert af["executor"] == "LocalExecutor"
    assert af["images"]["airflow"] == {"repository": "apache/airflow", "tag": "3.0.2"}
    assert af["airflowVersion"] == "3.0.2"
    for key in ("fernetKeySecretName", "apiSecretKeySecretName", "jwtSecretName", "webserverSecretKeySecretName"):
        assert af[key]
    assert af["data"]["metadataSecretName"] == "airflow-metadata-connection"
    assert af["dagProcessor"]["enabled"] is True and af["triggerer"]["enabled"] is True
    assert af["statsd"]["enabled"] is True and af["migrateDatabaseJob"]["enabled"] is True
    assert af["webserver"]["defaultUser"]["password"] == ""
    env = {e["name"]: e for e in af["createUserJob"]["env"]}
    assert env["AIRFLOW_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "airflow-admin-user"
    ingress = af["ingress"]["apiServer"]
    assert ingress["enabled"] is True and ingress["ingressClassName"] == "traefik"
    assert ingress["hosts"][0]["name"] == "airflow.stratdata.org"
    assert ingress["hosts"][0]["tls"] == {"enabled": True, "secretName": "airflow-tls"}
    variant = values(rendered["variant"], "airflow.values.yaml")["ingress"]["apiServer"]
    assert variant["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert af["config"]["core"] == {
        "parallelism": "8", "auth_manager": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"}
    assert af["config"]["api"] == {"base_url": "https://airflow.stratdata.org", "workers": "1"}
    for component in ("scheduler", "apiServer", "dagProcessor", "triggerer", "statsd"):
        res = af[component]["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"], component


def test_airflow_config_overrides_merge_key_by_key(rendered):
    """A [core] override keeps the role's auth_manager; the keys it names win; new sections are added."""
    config = values(rendered["variant"], "airflow.values.yaml")["config"]
    assert config["core"] == {
        "parallelism": "4", "default_timezone": "Europe/Madrid",
        "auth_manager": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"}
    assert config["api"]["base_url"] == "https://airflow.stratdata.org"
    assert config["scheduler"] == {"dag_dir_list_interval": "120"}
    text = (Path(rendered["variant"]) / "airflow.values.yaml").read_text()
    assert len([line for line in text.splitlines() if line.startswith("config:")]) == 1


def validate_cert_manager_object(doc, facts):
    """Validate a cert-manager object against the recorded spec schema of the pinned chart's CRDs."""
    import jsonschema

    assert doc["apiVersion"] == "cert-manager.io/v1", doc["apiVersion"]
    kind = facts["kinds"][doc["kind"]]
    assert set(doc) == {"apiVersion", "kind", "metadata", "spec"}, sorted(doc)
    if kind["scope"] == "Namespaced":
        assert doc["metadata"].get("namespace"), "%s %s needs a namespace" % (doc["kind"], doc["metadata"]["name"])
    else:
        assert "namespace" not in doc["metadata"], "%s is cluster-scoped" % doc["kind"]
    jsonschema.Draft7Validator(kind["spec"]).validate(doc["spec"])


def test_cert_manager_objects_validate_against_the_pinned_crds(rendered):
    """Certificate / ClusterIssuer objects against the cert-manager v1.21.1 CRD schemas (recorded facts,
    unknown keys rejected); the Ingress names the ClusterIssuer that is rendered."""
    import jsonschema

    facts = json.loads(CERT_MANAGER_CRD_FACTS.read_text())
    assert "v1.21.1" in facts["source"]
    objects = docs(Path(rendered["git_sync"]) / "cert-manager-issuers.yaml")
    for doc in objects:
        validate_cert_manager_object(doc, facts)
    kinds = {(d["kind"], d["metadata"]["name"]): d for d in objects}
    assert set(kinds) == {("ClusterIssuer", "pi-cluster-selfsigned"), ("Certificate", "pi-cluster-ca"),
                          ("ClusterIssuer", "pi-cluster-ca")}
    assert kinds[("ClusterIssuer", "pi-cluster-selfsigned")]["spec"] == {"selfSigned": {}}
    ca = kinds[("Certificate", "pi-cluster-ca")]
    assert ca["spec"]["isCA"] is True and ca["metadata"]["namespace"] == "cert-manager"
    assert ca["spec"]["issuerRef"] == {"name": "pi-cluster-selfsigned", "kind": "ClusterIssuer",
                                       "group": "cert-manager.io"}
    assert kinds[("ClusterIssuer", "pi-cluster-ca")]["spec"] == {"ca": {"secretName": ca["spec"]["secretName"]}}
    ingress = values(rendered["git_sync"], "airflow.values.yaml")["ingress"]["apiServer"]
    assert ingress["annotations"] == {"cert-manager.io/cluster-issuer": "pi-cluster-ca"}
    assert ingress["hosts"][0]["tls"] == {"enabled": True, "secretName": "airflow-tls"}

    (acme,) = docs(Path(rendered["variant"]) / "cert-manager-issuers.yaml")
    validate_cert_manager_object(acme, facts)
    assert acme["metadata"]["name"] == "letsencrypt" and acme["spec"]["acme"]["email"] == "ops@example.invalid"
    assert acme["spec"]["acme"]["solvers"] == [{"http01": {"ingress": {"ingressClassName": "traefik"}}}]
    variant_ingress = values(rendered["variant"], "airflow.values.yaml")["ingress"]["apiServer"]
    assert variant_ingress["annotations"]["cert-manager.io/cluster-issuer"] == acme["metadata"]["name"]

    # the recorded schema does catch mistakes
    bad = json.loads(json.dumps(ca))
    bad["spec"]["isCa"] = True
    with pytest.raises(jsonschema.ValidationError):
        validate_cert_manager_object(bad, facts)
    bad = json.loads(json.dumps(ca))
    del bad["spec"]["secretName"]
    with pytest.raises(jsonschema.ValidationError):
        validate_cert_manager_object(bad, facts)


def test_storage_layers(rendered):
    lh = values(rendered["git_sync"], "longhorn.values.yaml")
    assert lh["persistence"]["defaultClass"] is True
    assert lh["persistence"]["defaultClassReplicaCount"] == 2
    assert lh["defaultSettings"]["defaultDataPath"] == "/var/lib/longhorn"
    # k3s_server_disable removes local-storage: no patch of a StorageClass that does not exist.
    assert not (Path(rendered["git_sync"]) / "longhorn-local-path-not-default.patch.yaml").exists()
    labels = docs(Path(rendered["git_sync"]) / "longhorn-node-labels.patch.yaml")
    assert sorted(d["metadata"]["name"] for d in labels) == ["pi-worker-0%d" % i for i in range(2, 8)]
    nfs = values(rendered["git_sync"], "nfs-subdir-external-provisioner.values.yaml")
    assert nfs["storageClass"]["name"] == "nfs-client"
    assert nfs["storageClass"]["defaultClass"] is False
    assert nfs["storageClass"]["archiveOnDelete"] is True
    assert nfs["storageClass"]["reclaimPolicy"] == "Delete"
    assert nfs["storageClass"]["accessModes"] == "ReadWriteMany"
    assert nfs["nfs"]["path"] == "/srv/nfs/k8s"
    master = yaml.safe_load((REPO / "inventory" / "host_vars" / "pi-master.yml").read_text())
    assert nfs["nfs"]["server"] == master["ansible_host"]


def fake_secrets():
    vault = yaml.safe_load(TEST_VAULT.read_text())
    secrets = [str(v) for v in vault.values() if str(v)]
    secrets.append("FAKE-ssh-key-body-77aa")
    return secrets


def test_no_secret_in_any_rendered_file(rendered):
    secrets = fake_secrets()
    assert len(secrets) >= 12
    for directory in rendered.values():
        for path in Path(directory).iterdir():
            text = path.read_text()
            for secret in secrets:
                assert secret not in text, "%s leaks %s" % (path.name, secret)
                encoded = base64.b64encode(secret.encode()).decode()
                assert encoded not in text, "%s leaks base64 of %s" % (path.name, secret)


def test_secret_objects_are_redacted(rendered):
    count = 0
    for directory in rendered.values():
        for path in Path(directory).glob("*.secret.yaml"):
            for doc in docs(path):
                assert doc["kind"] == "Secret"
                assert "data" not in doc
                assert set(doc["stringData"].values()) == {"REDACTED"}, path
                count += 1
    assert count >= 20


def test_values_files_have_no_secret_material(rendered):
    for directory in rendered.values():
        for name in VALUES_CHARTS:
            text = (Path(directory) / name).read_text()
            assert "REDACTED" not in text
            assert "admin123" not in text
            lowered = text.lower()
            for forbidden in ("secretcontents", "fernetkey:", "jwtsecret:", "apisecretkey:", "postgrespassword"):
                assert forbidden not in lowered, (name, forbidden)


def test_plain_manifests_validate_against_kubernetes_1_33(rendered):
    import kubernetes_validate  # in requirements-dev.txt: a missing package must fail, not skip
    checked = 0
    for directory in rendered.values():
        for path in sorted(Path(directory).glob("*.yaml")):
            if path.name.endswith((".values.yaml", ".patch.yaml")):
                continue
            for doc in docs(path):
                if doc.get("apiVersion", "").startswith("cert-manager.io/"):
                    continue  # custom resources: test_cert_manager_objects_validate_against_the_pinned_crds
                if doc.get("apiVersion", "").startswith("monitoring.coreos.com/"):
                    continue  # Prometheus Operator CRDs: checked by tests/integration/roles/test_monitoring.py
                kubernetes_validate.validate(doc, "1.33.0", strict=True)
                checked += 1
    assert checked >= 30


def dag_settings():
    """dags/pi_cluster_dags/settings.py (plain constants, no Airflow import): what the DAGs read at run time."""
    spec = importlib.util.spec_from_file_location("pi_cluster_dag_settings",
                                                  REPO / "dags" / "pi_cluster_dags" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("mode", ["git_sync", "rwx_pvc"])
def test_airflow_gives_the_dags_their_connection_and_jobs_namespace(rendered, mode):
    settings = dag_settings()
    af = values(rendered[mode], "airflow.values.yaml")
    # connection appdb: only a reference to the Secret (chart `secret:` list), never a value
    conn_env = "AIRFLOW_CONN_%s" % settings.APPDB_CONN_ID_DEFAULT.upper()
    assert conn_env == "AIRFLOW_CONN_APPDB"
    assert af["secret"] == [{"envName": conn_env, "secretName": "airflow-appdb-connection", "secretKey": conn_env}]
    # Variable pi_cluster_jobs_namespace: plain env (chart `env:` list)
    env = {e["name"]: e for e in af["env"]}
    var_env = "AIRFLOW_VAR_%s" % settings.JOBS_NAMESPACE_VAR.upper()
    assert env[var_env] == {"name": var_env, "value": settings.JOBS_NAMESPACE_DEFAULT}
    assert conn_env not in env
    # the Secret itself: in the Airflow namespace, redacted by make render
    secrets = {d["metadata"]["name"]: d for d in docs(Path(rendered[mode]) / "airflow-secrets.secret.yaml")}
    secret = secrets["airflow-appdb-connection"]
    assert secret["metadata"]["namespace"] == "airflow"
    assert "data" not in secret
    assert secret["stringData"] == {conn_env: "REDACTED"}
    # the test vault's appdb password (plain, URL-encoded, base64) appears in no rendered file
    password = str(yaml.safe_load(TEST_VAULT.read_text())["vault_appdb_password"])
    forms = {password, quote(password, safe=""), base64.b64encode(password.encode()).decode()}
    for path in Path(rendered[mode]).iterdir():
        text = path.read_text()
        for form in forms:
            assert form not in text, "%s leaks the appdb password (%s)" % (path.name, form)


@pytest.mark.parametrize("mode", ["git_sync", "rwx_pvc"])
def test_airflow_scheduler_may_run_job_pods_in_the_jobs_namespace(rendered, mode):
    import kubernetes_validate  # in requirements-dev.txt: a missing package must fail, not skip
    directory = Path(rendered[mode])
    namespaces = docs(directory / "airflow-namespace.yaml")
    assert {d["metadata"]["name"] for d in namespaces if d["kind"] == "Namespace"} == {"airflow", "financial-screener"}
    rbac = docs(directory / "airflow-jobs-rbac.yaml")
    by_kind = {d["kind"]: d for d in rbac}
    assert len(rbac) == 2 and set(by_kind) == {"Role", "RoleBinding"}
    role, binding = by_kind["Role"], by_kind["RoleBinding"]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "financial-screener"
    verbs = {}
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        for resource in rule["resources"]:
            verbs.setdefault(resource, set()).update(rule["verbs"])
    assert set(verbs) == {"pods", "pods/log", "events"}
    assert verbs["pods"] >= {"create", "get", "list", "watch", "delete"}
    assert verbs["pods/log"] >= {"get"}
    assert verbs["events"] >= {"list"}
    assert not any("*" in v for v in verbs.values())
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    # LocalExecutor: the tasks run in the scheduler pod, service account "<release>-scheduler" (chart 1.18.0)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "airflow-scheduler", "namespace": "airflow"}]
    for doc in namespaces + rbac:
        kubernetes_validate.validate(doc, "1.33.0", strict=True)


# Recorded from the upstream chart with scripts/chart_keys.py record (source named in each file).
SOURCE_RE = re.compile(r"^# Source: github\.com/[\w.-]+/[\w.-]+ commit [0-9a-f]{40}, [\w./-]+$", re.M)


def recorded_keys(chart):
    entries = [line.strip() for line in (CHART_KEYS / ("%s.txt" % chart)).read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    return {k for k in entries if not k.endswith(".*")}, [k[:-1] for k in entries if k.endswith(".*")]


def undeclared(data, chart):
    exact, prefixes = recorded_keys(chart)
    return [path for path in key_paths(data) if path not in exact and not any(path.startswith(p) for p in prefixes)]


@pytest.mark.parametrize("values_name", sorted(VALUES_CHARTS))
def test_value_keys_exist_in_the_pinned_charts(rendered, values_name):
    for directory in rendered.values():
        unknown = undeclared(values(directory, values_name), VALUES_CHARTS[values_name])
        assert unknown == [], "%s sets keys the %s chart does not declare" % (values_name, VALUES_CHARTS[values_name])


@pytest.mark.parametrize("chart", sorted(VALUES_CHARTS.values()))
def test_chart_key_lists_name_their_upstream_source(chart):
    """Each list was recorded from the pinned chart itself: its header names repository, commit and path."""
    text = (CHART_KEYS / ("%s.txt" % chart)).read_text()
    name, version = chart.rsplit("-", 1)
    assert "the %s %s chart declares" % (name, version) in text
    assert SOURCE_RE.search(text), text[:500]


@pytest.mark.parametrize("chart, values_data, expected", [
    # hand-written misspellings next to real keys of each pinned chart: only the misspelling is undeclared
    ("longhorn-1.10.2", {"defaultSettings": {"defaultDataPath": "/x", "defaultDataPaths": "/x"},
                         "persistence": {"defaultClassReplicaCount": 2, "defaultClassReplicaCounts": 2}},
     ["defaultSettings.defaultDataPaths", "persistence.defaultClassReplicaCounts"]),
    ("velero-11.4.0", {"configuration": {"backupStorageLocation": [], "backupStorageLocations": []},
                       "deployNodeAgent": True, "deployNodeAgents": True},
     ["configuration.backupStorageLocations", "deployNodeAgents"]),
    ("postgresql-16.7.27", {"auth": {"database": "appdb", "databse": "appdb"},
                            "primary": {"persistence": {"size": "1Gi", "sizes": "1Gi"},
                                        "podAnnotations": {"pre.hook.backup.velero.io/command": "x"}}},
     ["auth.databse", "primary.persistence.sizes"]),
    ("nfs-subdir-external-provisioner-4.0.18", {"nfs": {"server": "x", "servers": "x"},
                                                "storageClass": {"name": "nfs-client", "nam": "x"}},
     ["nfs.servers", "storageClass.nam"]),
])
def test_chart_key_lists_refuse_undeclared_keys(chart, values_data, expected):
    assert undeclared(values_data, chart) == expected


@pytest.mark.parametrize("extra, message", [
    ({"airflow_dags_persistence_access_mode": "ReadWriteOnce"}, "airflow_dags_persistence_access_mode"),
    ({"pi_cluster_dags_mode": "copy_by_hand"}, "pi_cluster_dags_mode must be git_sync"),
])
def test_airflow_role_refuses_rwo_and_both_modes(tmp_path, extra, message):
    extra_file = tmp_path / "bad.yml"
    extra_file.write_text(yaml.safe_dump(extra))
    proc = render(tmp_path / "out", "rwx_pvc", "-e", "@%s" % extra_file)
    assert proc.returncode != 0
    assert message in proc.stdout
