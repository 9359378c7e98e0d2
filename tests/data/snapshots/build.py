# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the recorded snapshots of tests/data/snapshots from tests/data/cluster_states (run once, output committed).

    python3 tests/data/snapshots/build.py     # needs openssl for the CA and the UI certificate

Each snapshot is what playbooks/snapshot.yml writes: <resource>.json = `kubectl get <resource> -A -o json`
(a v1 List), Secrets reduced by the same code that snapshot.yml uses (module_utils/snapshot.py), and the
results verify takes from the databases and the APIs (dag_status, dag_config, dag_runs, ui, trigger, alerts).
The certificates are real (made here by openssl); only their fingerprints end up in the files.
"""

import base64
import copy
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.snapshot import kubectl_list  # noqa: E402

STATES = REPO / "tests" / "data" / "cluster_states"
KUBECTL = ("pods", "events", "pvcs", "pvs", "statefulsets", "deployments", "backups", "ingresses", "task_pods")
RESULTS = ("dag_status", "dag_config", "dag_runs", "trigger", "ui")
HOST = "airflow.stratdata.org"
ISSUER = "pi-cluster-ca"
FAKE_KEY = "-----BEGIN " + "PRIVATE KEY-----\nnot-a-key\n"  # dropped by the snapshot like all data
NODES = ["pi-master"] + ["pi-worker-0%d" % n for n in range(2, 8)]


def ts(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def uid(*parts):
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return "%s-%s-5%s-a%s-%s" % (digest[:8], digest[8:12], digest[13:16], digest[17:20], digest[20:32])


def certificates(workdir):
    """A cluster CA and the UI certificate it signed (PEM), made by openssl."""
    ca_key, ca_crt = workdir / "ca.key", workdir / "ca.crt"
    key, csr, crt = workdir / "tls.key", workdir / "tls.csr", workdir / "tls.crt"
    run = lambda *args: subprocess.run(args, check=True, capture_output=True)  # noqa: E731
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        str(ca_key), "-out", str(ca_crt), "-days", "3650", "-subj", "/CN=pi-cluster CA")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
        "-out", str(csr), "-subj", "/CN=%s" % HOST)
    ext = workdir / "ext.cnf"
    ext.write_text("subjectAltName=DNS:%s\n" % HOST)
    run("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "90", "-extfile", str(ext))
    fingerprint = run("openssl", "x509", "-in", str(ca_crt), "-noout", "-fingerprint", "-sha256").stdout.decode()
    return ca_crt.read_text(), crt.read_text(), fingerprint.strip().split("=", 1)[1]


def b64(text):
    return base64.b64encode(text.encode()).decode()


def secret(namespace, name, created, stype="Opaque", data=None, annotations=None, labels=None):
    meta = {"creationTimestamp": created, "name": name, "namespace": namespace,
            "resourceVersion": str(4100000 + len(name)), "uid": uid("secret", namespace, name)}
    if annotations:
        meta["annotations"] = annotations
    if labels:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": stype,
            "data": {k: b64(v) for k, v in (data or {}).items()}}


def secrets(created, ca_pem, leaf_pem, cert_manager=True):
    """Every Secret of the namespaces, with (fake) data that the snapshot must drop."""
    items = [
        secret("airflow", "airflow-fernet-key", created, data={"fernet-key": "not-a-real-fernet-key"}),
        secret("airflow", "airflow-metadata", created, data={"connection": "not-a-real-connection-string"}),
        secret("airflow", "airflow-api-secret-key", created, data={"api-secret-key": "not-a-real-key"}),
        secret("airflow", "airflow-postgresql", created, data={"postgres-password": "not-a-real-password"}),
        secret("databases", "postgresql", created, data={"password": "not-real", "postgres-password": "not-real"}),
        secret("velero", "velero-credentials", created, data={"cloud": "not-real-credentials"}),
    ]
    tls_annotations = None
    if cert_manager:
        tls_annotations = {
            "cert-manager.io/alt-names": HOST, "cert-manager.io/certificate-name": "airflow-tls",
            "cert-manager.io/common-name": HOST, "cert-manager.io/ip-sans": "",
            "cert-manager.io/issuer-group": "cert-manager.io", "cert-manager.io/issuer-kind": "ClusterIssuer",
            "cert-manager.io/issuer-name": ISSUER, "cert-manager.io/uri-sans": ""}
        items.append(secret("cert-manager", ISSUER, created, "kubernetes.io/tls",
                            {"tls.crt": ca_pem, "tls.key": FAKE_KEY,
                             "ca.crt": ca_pem}))
    items.append(secret("airflow", "airflow-tls", created, "kubernetes.io/tls",
                        dict({"tls.crt": leaf_pem, "tls.key": FAKE_KEY},
                             **({"ca.crt": ca_pem} if cert_manager else {})),
                        annotations=tls_annotations))
    return items


def cert_manager_objects(issued, not_after):
    certificate = {
        "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"creationTimestamp": issued, "generation": 1, "name": "airflow-tls", "namespace": "airflow",
                     "labels": {"app.kubernetes.io/managed-by": "Helm", "component": "airflow-ingress"},
                     "ownerReferences": [{"apiVersion": "networking.k8s.io/v1", "blockOwnerDeletion": True,
                                          "controller": True, "kind": "Ingress",
                                          "name": "airflow-api-server-ingress",
                                          "uid": "0271b623-8b16-53b6-99c7-fcce5bf301ec"}],
                     "resourceVersion": "4100211", "uid": uid("certificate", "airflow-tls")},
        "spec": {"dnsNames": [HOST], "issuerRef": {"group": "cert-manager.io", "kind": "ClusterIssuer",
                                                   "name": ISSUER},
                 "secretName": "airflow-tls", "usages": ["digital signature", "key encipherment"]},
        "status": {"conditions": [{"lastTransitionTime": issued, "message": "Certificate is up to date and has not "
                                   "expired", "observedGeneration": 1, "reason": "Ready", "status": "True",
                                   "type": "Ready"}],
                   "notAfter": not_after, "notBefore": issued, "renewalTime": not_after[:8] + "01T00:00:00Z",
                   "revision": 1},
    }
    issuers = [
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
         "metadata": {"creationTimestamp": issued, "generation": 1, "name": "pi-cluster-selfsigned",
                      "resourceVersion": "4100101", "uid": uid("clusterissuer", "selfsigned")},
         "spec": {"selfSigned": {}},
         "status": {"conditions": [{"lastTransitionTime": issued, "observedGeneration": 1, "reason": "IsReady",
                                    "status": "True", "type": "Ready"}]}},
        {"apiVersion": "cert-manager.io/v1", "kind": "ClusterIssuer",
         "metadata": {"creationTimestamp": issued, "generation": 1, "name": ISSUER, "resourceVersion": "4100140",
                      "uid": uid("clusterissuer", ISSUER)},
         "spec": {"ca": {"secretName": ISSUER}},
         "status": {"conditions": [{"lastTransitionTime": issued, "message": "Signing CA verified",
                                    "observedGeneration": 1, "reason": "KeyPairVerified", "status": "True",
                                    "type": "Ready"}]}},
    ]
    return [certificate], issuers


def schedules(created, last_backup=None):
    items = []
    for name, cron in (("velero-daily", "0 2 * * *"), ("velero-weekly", "0 3 * * 0")):
        status = {"phase": "Enabled", "lastSkipped": None}
        status.pop("lastSkipped")
        if last_backup and name == "velero-daily":
            status["lastBackup"] = last_backup
        items.append({
            "apiVersion": "velero.io/v1", "kind": "Schedule",
            "metadata": {"creationTimestamp": created, "generation": 1, "name": name, "namespace": "velero",
                         "labels": {"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/name": "velero"},
                         "resourceVersion": "4100300", "uid": uid("schedule", name)},
            "spec": {"schedule": cron, "useOwnerReferencesInBackup": False,
                     "template": {"defaultVolumesToFsBackup": True, "includedNamespaces": ["airflow", "databases"],
                                  "snapshotVolumes": False, "storageLocation": "default", "ttl": "720h0m0s"}},
            "status": status,
        })
    return items


def nodes(created):
    items = []
    for index, name in enumerate(NODES):
        labels = {"beta.kubernetes.io/arch": "arm64", "beta.kubernetes.io/os": "linux",
                  "kubernetes.io/arch": "arm64", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "node.longhorn.io/create-default-disk": "true"}
        if name == "pi-master":
            labels.update({"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/master": "true"})
        items.append({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"creationTimestamp": created, "labels": labels, "name": name,
                         "resourceVersion": str(4100400 + index), "uid": uid("node", name)},
            "spec": {"podCIDR": "10.42.%d.0/24" % index, "providerID": "k3s://%s" % name},
            "status": {"addresses": [{"address": "192.168.10.%d" % (10 + index), "type": "InternalIP"},
                                     {"address": name, "type": "Hostname"}],
                       "capacity": {"cpu": "4", "memory": "8142240Ki", "pods": "110"},
                       "conditions": [{"lastHeartbeatTime": created, "lastTransitionTime": created,
                                       "message": "kubelet is posting ready status", "reason": "KubeletReady",
                                       "status": "True", "type": "Ready"}],
                       "nodeInfo": {"architecture": "arm64", "kernelVersion": "6.12.47+rpt-rpi-2712",
                                    "kubeletVersion": "v1.33.5+k3s1", "osImage": "Debian GNU/Linux 13 (trixie)"}},
        })
    return items


def volume_attachments(pods, pvs, created):
    """Longhorn CSI attachments of the PVs that running pods mount (one per PV and node)."""
    pv_of = {(p["spec"]["claimRef"]["namespace"], p["spec"]["claimRef"]["name"]): p["metadata"]["name"]
             for p in pvs}
    seen = {}
    for pod in pods:
        if pod["status"].get("phase") != "Running":
            continue
        for volume in pod["spec"].get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            pv = pv_of.get((pod["metadata"]["namespace"], claim))
            if pv and pv not in seen:
                seen[pv] = pod["spec"]["nodeName"]
    items = []
    for pv, node in sorted(seen.items()):
        name = "csi-" + hashlib.sha256((pv + node).encode()).hexdigest()
        items.append({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
                      "metadata": {"creationTimestamp": created, "name": name, "resourceVersion": "4100500",
                                   "uid": uid("va", pv)},
                      "spec": {"attacher": "driver.longhorn.io", "nodeName": node,
                               "source": {"persistentVolumeName": pv}},
                      "status": {"attached": True}})
    return items


def alert(name, severity, since, summary, runbook, namespace=None, state="active"):
    labels = {"alertname": name, "severity": severity, "prometheus": "monitoring/kube-prometheus-stack-prometheus"}
    if namespace:
        labels["namespace"] = namespace
    return {"annotations": {"summary": summary, "runbook": runbook}, "endsAt": "2099-01-01T00:00:00.000Z",
            "fingerprint": hashlib.sha256(name.encode()).hexdigest()[:16], "receivers": [{"name": "null"}],
            "startsAt": since, "status": {"inhibitedBy": [], "silencedBy": [], "state": state},
            "updatedAt": since, "generatorURL": "http://prometheus.monitoring:9090/graph", "labels": labels}


WATCHDOG = alert("Watchdog", "none", "2026-11-21T14:00:00.000Z",
                 "An alert that should always be firing to certify that Alertmanager is working properly.", "")


def load(state):
    files = {}
    for name in KUBECTL:
        path = STATES / state / (name + ".json")
        if path.exists():
            files[name] = json.loads(path.read_text())
    extra = json.loads((STATES / state / "ansible.json").read_text())
    for name in RESULTS:
        files[name] = extra[name]
    return files, extra["captured_at"], extra["api"]


def shift(value, install):
    """Every timestamp before the install moves to just after it (a day-one cluster has nothing older)."""
    if isinstance(value, dict):
        return {k: shift(v, install) for k, v in value.items()}
    if isinstance(value, list):
        return [shift(v, install) for v in value]
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", value):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00")[:19]).replace(tzinfo=timezone.utc)
        except ValueError:
            return value
        if when < install:
            offset = int(hashlib.sha256(value.encode()).hexdigest(), 16) % 600
            return ts(install + timedelta(seconds=offset))
    return value


def write(directory, files, captured_at, api):
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.json"):
        old.unlink()
    kinds = {"pods": ("Pod", "v1"), "task_pods": ("Pod", "v1"), "events": ("Event", "v1"),
             "pvcs": ("PersistentVolumeClaim", "v1"), "pvs": ("PersistentVolume", "v1"),
             "statefulsets": ("StatefulSet", "apps/v1"), "deployments": ("Deployment", "apps/v1"),
             "backups": ("Backup", "velero.io/v1"), "schedules": ("Schedule", "velero.io/v1"),
             "ingresses": ("Ingress", "networking.k8s.io/v1"), "secrets": ("Secret", "v1"),
             "nodes": ("Node", "v1"), "volumeattachments": ("VolumeAttachment", "storage.k8s.io/v1"),
             "certificates": ("Certificate", "cert-manager.io/v1"),
             "clusterissuers": ("ClusterIssuer", "cert-manager.io/v1"),
             "issuers": ("Issuer", "cert-manager.io/v1")}
    for name, content in sorted(files.items()):
        if name in kinds:
            items = content["items"] if isinstance(content, dict) else content
            content = kubectl_list(items, *kinds[name])
        (directory / (name + ".json")).write_text(json.dumps(content, indent=1, sort_keys=True) + "\n")
    resources = yaml.safe_load((REPO / "roles" / "verify" / "defaults" / "main.yml").read_text())[
        "verify_snapshot_resources"]
    info = {"captured_at": captured_at, "kube_host": "pi-master", "api": api, "files": sorted(files),
            "resources": resources}
    (directory / "snapshot-info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ca_pem, leaf_pem, fingerprint = certificates(Path(tmp))

    # broken: the original assessment; monitoring and cert-manager not installed, a user-provided TLS Secret
    files, now, api = load("broken")
    files["secrets"] = secrets("2026-09-14T18:00:00Z", ca_pem, leaf_pem, cert_manager=False)
    files["schedules"] = schedules("2026-09-14T18:05:00Z", "2026-11-20T02:00:00Z")
    files["nodes"] = nodes("2026-09-14T17:40:00Z")
    files["volumeattachments"] = volume_attachments(files["pods"]["items"], files["pvs"]["items"],
                                                    "2026-11-20T08:50:00Z")
    files["task_pods"] = []  # no run of the DAG was going on
    files["alerts"] = {"not_installed": True, "reason": "no Service monitoring/monitoring-alertmanager "
                                                        "(monitoring layer not installed)"}
    write(HERE / "broken", files, now, api)  # no certificates.json/clusterissuers.json: cert-manager's CRDs were absent

    # healthy: after the repair; cert-manager's cluster CA, monitoring with only the Watchdog firing
    files, now, api = load("healthy")
    files["secrets"] = secrets("2026-11-21T14:00:00Z", ca_pem, leaf_pem)
    files["certificates"], files["clusterissuers"] = cert_manager_objects("2026-11-21T14:01:10Z",
                                                                          "2027-02-19T14:01:10Z")
    files["issuers"] = []
    for ingress in files["ingresses"]["items"]:
        ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] = ISSUER
    files["schedules"] = schedules("2026-09-14T18:05:00Z", "2026-11-23T02:00:00Z")
    files["nodes"] = nodes("2026-09-14T17:40:00Z")
    files["volumeattachments"] = volume_attachments(files["pods"]["items"], files["pvs"]["items"],
                                                    "2026-11-21T14:02:00Z")
    files["alerts"] = [WATCHDOG]
    healthy = copy.deepcopy(files)
    write(HERE / "healthy", files, now, api)

    # day-one: the same cluster installed at 09:31 today, first backup taken from the daily schedule at 09:50
    install = datetime(2026, 11, 23, 9, 31, tzinfo=timezone.utc)
    files = shift(copy.deepcopy(healthy), install)
    files["task_pods"] = []
    files["trigger"] = {"requested": False}
    files["dag_runs"] = {d: {"dag_runs": [], "total_entries": 0}
                         for d in ("historical_load_equities", "calculate_indicators")}
    for dag in files["dag_status"]["dags"].values():
        dag["is_paused"] = True  # dags_are_paused_at_creation
    files["dag_status"]["paused"] = sorted(files["dag_status"]["dags"])
    first = copy.deepcopy(next(b for b in healthy["backups"]["items"]
                               if b["metadata"]["name"] == "velero-daily-20261123020000"))
    first["metadata"].update(name="velero-daily-20261123095012", creationTimestamp="2026-11-23T09:50:12Z",
                             uid=uid("backup", "first"))
    first["status"].update(startTimestamp="2026-11-23T09:50:12Z", completionTimestamp="2026-11-23T09:53:40Z",
                           expiration="2026-12-23T09:50:12Z")
    files["backups"]["items"] = [first]
    files["schedules"] = schedules("2026-11-23T09:49:50Z")
    files["alerts"] = [dict(WATCHDOG, startsAt="2026-11-23T09:45:00.000Z")]
    write(HERE / "day-one", files, "2026-11-23T10:20:00Z", api)

    # day-one, first backup failed: the object store was not reachable
    failed = copy.deepcopy(first)
    failed["status"] = {"completionTimestamp": "2026-11-23T09:50:44Z", "expiration": "2026-12-23T09:50:12Z",
                        "failureReason": "error getting backup store for location \"default\": rpc error: code = "
                                         "Unknown desc = dial tcp 10.43.7.19:9000: connect: connection refused",
                        "formatVersion": "1.1.0", "phase": "Failed", "startTimestamp": "2026-11-23T09:50:12Z",
                        "version": 1}
    files["backups"]["items"] = [failed]
    files["alerts"] = [dict(WATCHDOG, startsAt="2026-11-23T09:45:00.000Z"),
                       alert("VeleroBackupFailed", "critical", "2026-11-23T09:51:00.000Z",
                             "Velero backup velero-daily-20261123095012 failed",
                             "velero backup logs <name>; ansible-playbook site.yml --tags backup", "velero")]
    write(HERE / "day-one-failed-backup", files, "2026-11-23T10:20:00Z", api)
    print("CA SHA-256 fingerprint:", fingerprint)


if __name__ == "__main__":
    main()
