"""The secret scan fails on plaintext secrets and passes on the repository itself."""

import subprocess
import sys

import pytest
from conftest import REPO

SCAN = REPO / "scripts" / "secret_scan.py"


def scan(root):
    return subprocess.run([sys.executable, str(SCAN), str(root)], capture_output=True, text=True)


def git_tree(tmp_path, files):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_repository_has_no_plaintext_secret():
    result = scan(REPO)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    "name,text,finding",
    [
        ("inventory/group_vars/all/vault.yml", "vault_k3s_token: abc\n", "vault file is not encrypted"),
        ("roles/x/defaults/main.yml", "x_admin_password: admin123\n", "literal value for secret-like key"),
        ("values.yaml", "webserverSecretKey: 'hunter2-hunter2'\n", "literal value for secret-like key"),
        ("notes.md", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n", "private key"),
        ("creds.txt", "AKIA" + "IOSFODNN7EXAMPLE\n", "AWS access key id"),
    ],
)
def test_plaintext_secret_is_found(tmp_path, name, text, finding):
    result = scan(git_tree(tmp_path, {name: text}))
    assert result.returncode == 1
    assert finding in result.stdout


@pytest.mark.parametrize(
    "text",
    [
        'x_admin_password: "{{ vault_airflow_admin_password }}"\n',
        "existingSecret: airflow-admin\n",
        "fernetKeySecretName: airflow-fernet-key\n",
        'x_password: ""\n',
        "x_config: >-\n  {{ {\n    'token': k3s_server_token,\n  } }}\n",
        'PasswordAuthentication: "no"\n',
    ],
)
def test_references_are_not_secrets(tmp_path, text):
    result = scan(git_tree(tmp_path, {"roles/x/defaults/main.yml": text}))
    assert result.returncode == 0, result.stdout
