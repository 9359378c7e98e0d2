"""k8s_tooling's api_check, the first task of every cluster-layer play, on its real-cluster path
(pi_cluster_lab false), through the real ansible-playbook and the real kubernetes.core.k8s_info.

Stand-in, at the outermost boundary: a small HTTP server that answers the Kubernetes API's discovery
(/version, /api, /apis, /api/v1) and GET /api/v1/namespaces/kube-system the way kube-apiserver does, and
counts the requests. Shown: an API that answered is asked once per run, not once per play (two plays, one
k8s_info run, both layers run); a missing kubeconfig and an API that does not answer each end every
layer's play with its one skip line, and every play asks again (the API may have come up since).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import REPO, ansible_env, run_ansible

pytestmark = pytest.mark.ansible

DISCOVERY = {
    "/version": {"major": "1", "minor": "33", "gitVersion": "v1.33.5+k3s1", "platform": "linux/arm64"},
    "/api": {"kind": "APIVersions", "versions": ["v1"],
             "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": []},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace",
         "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"], "shortNames": ["ns"]}]},
    "/api/v1/namespaces/kube-system": {
        "kind": "Namespace", "apiVersion": "v1",
        "metadata": {"name": "kube-system", "uid": "6f1c3c5e-0000-4000-8000-000000000001", "resourceVersion": "7",
                     "creationTimestamp": "2026-12-01T08:00:00Z",
                     "labels": {"kubernetes.io/metadata.name": "kube-system"}},
        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}},
}


class FakeApiServer(ThreadingHTTPServer):
    def __init__(self):
        self.requests = []
        super().__init__(("127.0.0.1", 0), FakeApiHandler)


class FakeApiHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        path = self.path.split("?", 1)[0]
        self.server.requests.append(path)
        body = DISCOVERY.get(path)
        status = 200 if body else 404
        if body is None:
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_api():
    server = FakeApiServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def kubeconfig(path, server):
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "pi-cluster",
        "clusters": [{"name": "pi-cluster", "cluster": {"server": server}}],
        "users": [{"name": "admin", "user": {"token": "stand-in"}}],
        "contexts": [{"name": "pi-cluster", "context": {"cluster": "pi-cluster", "user": "admin"}}],
    }))
    return path


def two_layers(tmp_path, kubeconfig_path):
    """Two cluster-layer plays shaped as playbooks/*.yml; each says so when its role part runs."""
    plays = []
    for layer in ("Storage | Longhorn", "Backup | Velero"):
        plays.append({
            "name": layer, "hosts": "localhost", "gather_facts": False,
            "vars": {"pi_cluster_lab": False, "pi_cluster_kubeconfig": str(kubeconfig_path),
                     "k8s_tooling_api_timeout": 3},
            "pre_tasks": [{"name": "Check that the Kubernetes API answers",
                           "ansible.builtin.import_role": {"name": "k8s_tooling", "tasks_from": "api_check"}}],
            "tasks": [{"name": "Layer work", "ansible.builtin.debug": {"msg": "%s ran" % layer}}],
        })
    path = tmp_path / "layers.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def run(playbook):
    return run_ansible(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                        "-e", "ansible_python_interpreter=%s" % sys.executable],
                       env=ansible_env(ANSIBLE_LOCALHOST_WARNING=0,
                                       ANSIBLE_ROLES_PATH=str(REPO / "roles")))


def test_an_api_that_answered_is_asked_once_per_run(tmp_path, fake_api):
    config = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:%d" % fake_api.server_address[1])
    result = run(two_layers(tmp_path, config))
    assert result.returncode == 0, result.stdout[-4000:]
    assert "Storage | Longhorn ran" in result.stdout and "Backup | Velero ran" in result.stdout
    assert "skipped: no Kubernetes API" not in result.stdout
    # one k8s_info run in the whole run: one discovery (it reads kube-system twice: find, then wait)
    assert result.stdout.count("TASK [k8s_tooling : Ask the Kubernetes API for the kube-system namespace]") == 1
    assert fake_api.requests.count("/version") == 1, fake_api.requests
    assert "/api/v1/namespaces/kube-system" in fake_api.requests


def test_a_missing_kubeconfig_skips_every_layer_and_each_play_looks_again(tmp_path):
    missing = tmp_path / "no-such-kubeconfig"
    result = run(two_layers(tmp_path, missing))
    assert result.returncode == 0, result.stdout[-4000:]
    for layer in ("Storage | Longhorn", "Backup | Velero"):
        assert "%s skipped: no Kubernetes API (%s not found: k3s server not installed or not started)" % (
            layer, missing) in result.stdout
        assert "%s ran" % layer not in result.stdout
    assert result.stdout.count("TASK [k8s_tooling : Look for the kubeconfig of the k3s server]") == 2


def test_an_api_that_does_not_answer_skips_every_layer(tmp_path, fake_api):
    port = fake_api.server_address[1]
    fake_api.shutdown()
    fake_api.server_close()
    config = kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:%d" % port)
    result = run(two_layers(tmp_path, config))
    assert result.returncode == 0, result.stdout[-4000:]
    assert result.stdout.count("skipped: no Kubernetes API (API did not answer:") == 2
    assert "ran\"" not in result.stdout
