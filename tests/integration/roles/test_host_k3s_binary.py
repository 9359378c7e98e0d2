"""Role k3s_binary on localhost against a local fake k3s release (no network).

A tiny HTTP server serves <version>/k3s, k3s-arm64 and sha256sum-<arch>.txt like the GitHub release;
the "binary" is a shell script that prints `k3s version <version> (...)`, so the role's version
check can run it. Install paths point into the test's temp dir.
"""

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import pytest
import yaml
from conftest import localhost_recap, run_playbook

# Every test here runs ansible-playbook (or renders through it): not part of `make unit-fast`.
pytestmark = pytest.mark.ansible

VERSION = "v1.33.5+k3s1"
PLAY = """
- name: k3s_binary test
  hosts: localhost
  gather_facts: true
  roles:
    - role: k3s_binary
  post_tasks:
    - name: Report
      ansible.builtin.debug:
        msg: "AVAILABLE={{ k3s_binary_available }} CHANGED={{ k3s_binary_changed }}"
"""


def fake_binary(version):
    return ("#!/bin/sh\necho 'k3s version %s (0123abcd)'\necho 'go version go1.24.6'\n" % version).encode()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def make_release(root: Path, version=VERSION, tamper=False):
    rel = root / version
    rel.mkdir(parents=True)
    files = {"k3s": fake_binary(version), "k3s-arm64": fake_binary(version),
             "k3s-airgap-images-amd64.tar.zst": b"fake-images-amd64",
             "k3s-airgap-images-arm64.tar.zst": b"fake-images-arm64"}
    for name, data in files.items():
        (rel / name).write_bytes(data)
    for arch in ("amd64", "arm64"):
        lines = []
        for name, data in files.items():
            if arch == "amd64" and name in ("k3s-arm64", "k3s-airgap-images-arm64.tar.zst"):
                continue
            if arch == "arm64" and name in ("k3s", "k3s-airgap-images-amd64.tar.zst"):
                continue
            lines.append("%s  %s" % (sha(data) if not tamper else "f" * 64, name))
        (rel / ("sha256sum-%s.txt" % arch)).write_text("\n".join(lines) + "\n")
    return rel


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        _Handler.requests.append(self.path)
        super().do_GET()


@pytest.fixture()
def release_server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    _Handler.requests = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, "http://127.0.0.1:%d" % server.server_address[1], _Handler.requests
    server.shutdown()
    server.server_close()


def setup(tmp_path, **group_vars):
    inv = tmp_path / "inventory"
    inv.mkdir()
    gv = {"pi_cluster_k3s_version": VERSION, "pi_cluster_lab": False,
          "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    gv.update(group_vars)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}},
                                                           "vars": gv}}))
    (tmp_path / "play.yml").write_text(PLAY)
    return inv / "hosts.yml", tmp_path / "play.yml"


run = run_playbook
recap = localhost_recap


@pytest.mark.parametrize("arch,fact", [("amd64", "x86_64"), ("arm64", "aarch64")])
def test_download_verified_and_idempotent(tmp_path, release_server, arch, fact):
    www, url, requests = release_server
    make_release(www)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, k3s_binary_release_url=url, k3s_binary_install_dir=str(bindir),
                                k3s_binary_arch=arch)
    first = run(inventory, playbook)
    assert first.returncode == 0, first.stdout[-4000:]
    assert "AVAILABLE=True CHANGED=True" in first.stdout
    wanted = "k3s" if arch == "amd64" else "k3s-arm64"
    assert "/v1.33.5%2Bk3s1/sha256sum-{}.txt".format(arch) in requests
    assert "/v1.33.5%2Bk3s1/{}".format(wanted) in requests
    installed = bindir / "k3s"
    assert installed.read_bytes() == fake_binary(VERSION)
    assert installed.stat().st_mode & 0o777 == 0o755

    requests.clear()
    second = run(inventory, playbook)
    assert second.returncode == 0, second.stdout[-4000:]
    assert recap(second.stdout)["changed"] == 0
    assert "AVAILABLE=True CHANGED=False" in second.stdout
    assert requests == []  # the installed binary reports the pinned version: nothing downloaded


def test_download_checksum_mismatch_fails(tmp_path, release_server):
    www, url, _ = release_server
    make_release(www, tamper=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, k3s_binary_release_url=url, k3s_binary_install_dir=str(bindir),
                                k3s_binary_arch="amd64")
    res = run(inventory, playbook)
    assert res.returncode != 0
    assert "checksum" in res.stdout.lower()
    assert not (bindir / "k3s").exists()


def test_upgrade_replaces_an_older_binary(tmp_path, release_server):
    www, url, _ = release_server
    make_release(www)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "k3s").write_bytes(fake_binary("v1.32.9+k3s1"))
    (bindir / "k3s").chmod(0o755)
    inventory, playbook = setup(tmp_path, k3s_binary_release_url=url, k3s_binary_install_dir=str(bindir),
                                k3s_binary_arch="amd64")
    res = run(inventory, playbook)
    assert res.returncode == 0, res.stdout[-4000:]
    assert "AVAILABLE=True CHANGED=True" in res.stdout
    assert (bindir / "k3s").read_bytes() == fake_binary(VERSION)


def test_local_source_with_airgap_images(tmp_path):
    local = make_release(tmp_path / "release")
    bindir, images = tmp_path / "bin", tmp_path / "images"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, k3s_binary_source="local", k3s_binary_local_dir=str(local),
                                k3s_binary_install_dir=str(bindir), k3s_binary_images_dir=str(images),
                                k3s_binary_arch="arm64")
    first = run(inventory, playbook)
    assert first.returncode == 0, first.stdout[-4000:]
    assert (bindir / "k3s").read_bytes() == fake_binary(VERSION)
    assert (images / "k3s-airgap-images-arm64.tar.zst").read_bytes() == b"fake-images-arm64"
    second = run(inventory, playbook)
    assert second.returncode == 0 and recap(second.stdout)["changed"] == 0, second.stdout[-4000:]


def test_local_source_tampered_binary_fails(tmp_path):
    local = make_release(tmp_path / "release")
    (local / "k3s-arm64").write_bytes(fake_binary(VERSION) + b"# tampered\n")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, k3s_binary_source="local", k3s_binary_local_dir=str(local),
                                k3s_binary_install_dir=str(bindir), k3s_binary_arch="arm64")
    res = run(inventory, playbook)
    assert res.returncode != 0
    assert "SHA-256 mismatch" in res.stdout
    assert not (bindir / "k3s").exists()


def test_local_source_missing_files_fails_outside_lab(tmp_path):
    (tmp_path / "empty").mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, k3s_binary_source="local", k3s_binary_local_dir=str(tmp_path / "empty"),
                                k3s_binary_install_dir=str(bindir), k3s_binary_arch="arm64")
    res = run(inventory, playbook)
    assert res.returncode != 0 and "lacks k3s-arm64 or sha256sum-arm64.txt" in res.stdout


@pytest.mark.parametrize("source", ["download", "local"])
def test_lab_without_binary_is_not_an_error(tmp_path, source):
    (tmp_path / "empty").mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    inventory, playbook = setup(tmp_path, pi_cluster_lab=True, k3s_binary_source=source,
                                k3s_binary_release_url="http://127.0.0.1:9/unreachable",
                                k3s_binary_local_dir=str(tmp_path / "empty"), k3s_binary_install_dir=str(bindir),
                                k3s_binary_arch="arm64")
    res = run(inventory, playbook)
    assert res.returncode == 0, res.stdout[-4000:]
    assert "AVAILABLE=False CHANGED=False" in res.stdout
    assert recap(res.stdout)["changed"] == 0
