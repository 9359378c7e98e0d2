"""The secret scan (detect-secrets + our vault-aware rules) fails on plaintext secrets of every shape,
passes on references, and passes on the repository itself."""

import subprocess
import sys
import textwrap

import pytest
from conftest import REPO

SCAN = REPO / "scripts" / "secret_scan.py"
PEM = "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"


def scan(root):
    return subprocess.run([sys.executable, str(SCAN), str(root)], capture_output=True, text=True)


def git_tree(tmp_path, files):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path


@pytest.mark.slow
def test_repository_has_no_plaintext_secret():
    result = scan(REPO)
    assert result.returncode == 0, result.stdout
    assert "0 finding(s)" in result.stdout


SECRET_K8S = """\
    apiVersion: v1
    kind: Secret
    metadata:
      name: airflow-tls
    type: kubernetes.io/tls
    data:
      tls.crt: aHVudGVyMmh1bnRlcjI=
      tls.key: czNjcjN0LXBsYWludGV4dA==
    """


@pytest.mark.parametrize(
    "name,text,finding",
    [
        # the two that the old reference-key pattern let through (issue 17)
        ("roles/x/defaults/main.yml", "client_secret: hunter2hunter2\n", "secret-like key 'client_secret'"),
        ("roles/x/defaults/main.yml", "x_jwt_secret: s3cr3t-plaintext-value\n", "secret-like key 'x_jwt_secret'"),
        # every key shape: *_secret, *_password, *_token, *_key, camelCase, kebab-case, quoted, list item
        ("roles/x/defaults/main.yml", "x_admin_password: admin123\n", "secret-like key 'x_admin_password'"),
        ("roles/x/defaults/main.yml", "x_api_token: tok-0123456789abcdef\n", "secret-like key 'x_api_token'"),
        ("roles/x/defaults/main.yml", "x_signing_key: 9f8e7d6c5b4a\n", "secret-like key 'x_signing_key'"),
        ("values.yaml", "webserverSecretKey: 'hunter2-hunter2'\n", "secret-like key 'webserverSecretKey'"),
        ("values.yaml", "auth:\n  postgresPassword: plain-pw\n", "secret-like key 'postgresPassword'"),
        ("k3s.yaml.j2", "agent-token: plain-token-value\n", "secret-like key 'agent-token'"),
        ("x.yml", "- 'db_password': 'plain-pw'\n", "secret-like key 'db_password'"),
        # URLs with credentials
        ("roles/x/defaults/main.yml", "x_url: postgresql://appdb:hunter2@db:5432/appdb\n", "URL with credentials"),
        ("docs/howto.md", "git clone https://bob:ghtoken123@git.example.org/x.git\n", "URL with credentials"),
        # PEM blocks, in YAML block scalars and anywhere else
        ("roles/x/defaults/main.yml", "x_tls: |\n  " + PEM.replace("\n", "\n  "), "private key (PEM block)"),
        ("notes.md", "-----BEGIN OPENSSH " + "PRIVATE KEY-----\n", "private key (PEM block)"),
        ("k.pem", "-----BEGIN ENCRYPTED " + "PRIVATE KEY-----\n", "private key (PEM block)"),
        # base64 data of a Kubernetes Secret, YAML and JSON
        ("manifests/tls.secret.yaml", SECRET_K8S, "data of a Kubernetes Secret 'tls.crt'"),
        ("manifests/tls.secret.yaml", SECRET_K8S, "data of a Kubernetes Secret 'tls.key'"),
        ("state/secrets.json", '{"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "s"},'
                               ' "data": {"password": "aHVudGVyMg=="}}]}', "data of a Kubernetes Secret 's'"),
        # vault files must be encrypted; cloud keys anywhere
        ("inventory/group_vars/all/vault.yml", "vault_k3s_token: abc\n", "vault file is not encrypted"),
        ("creds.txt", "AKIA" + "IOSFODNN7EXAMPLE\n", "AWS access key id"),
        # detect-secrets' own plugins find what our YAML rules do not look at (Python, shell)
        ("app/settings.py", 'db_password = "Tr0ub4dor-horse-battery"\n', "detect-secrets: Secret Keyword"),
        ("run.sh", 'export API_KEY="' + "a8Fq0Zx7Lm2Pw9Rt4Ys6Vb1Nc3Hd5Jk8" + '"\n', "detect-secrets:"),
    ],
)
def test_plaintext_secret_is_found(tmp_path, name, text, finding):
    result = scan(git_tree(tmp_path, {name: text}))
    assert result.returncode == 1, result.stdout
    assert finding in result.stdout, result.stdout


@pytest.mark.parametrize(
    "text",
    [
        'client_secret: "{{ vault_x }}"\n',
        'x_admin_password: "{{ vault_airflow_admin_password }}"\n',
        "x_api_token: \"{{ lookup('env', 'X_TOKEN') }}\"\n",
        "x_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6231336539666234306139346433616338376437376461\n",
        'x_url: "postgresql://appdb:{{ vault_appdb_password | urlencode }}@db:5432/appdb"\n',
        "existingSecret: airflow-admin\n",
        "fernetKeySecretName: airflow-fernet-key\n",
        "x_tls_secret_name: airflow-tls\n",
        "x_tls_secret: airflow-tls  # pragma: allowlist secret (the Secret's name)\n",
        "x_ssh_key_file: /home/pi/.ssh/id_ed25519\n",
        'x_password: ""\n',
        "x_config: >-\n  {{ {\n    'token': k3s_server_token,\n  } }}\n",
        'PasswordAuthentication: "no"\n',
        "env:\n  - name: X\n    valueFrom:\n      secretKeyRef:\n        name: airflow-admin\n        key: password\n",
        "auth:\n  secretKeys:\n    adminPasswordKey: postgres-password\n    userPasswordKey: password\n",
        "kind: Secret\nmetadata:\n  name: x\nstringData:\n  password: \"{{ vault_x }}\"\ndata:\n"
        "  token: \"{{ vault_y | b64encode }}\"\n",
    ],
)
def test_references_are_not_secrets(tmp_path, text):
    result = scan(git_tree(tmp_path, {"roles/x/defaults/main.yml": text}))
    assert result.returncode == 0, result.stdout


def test_allow_list_is_explicit(tmp_path):
    """Throwaway values pass only in files listed with a reason; listed files still fail on a private key."""
    files = {
        "lab/test-values.yml": "lab_password: throwaway-lab-only\n",
        "lab/key.yml": "x: |\n  " + PEM.replace("\n", "\n  "),
        ".secret-scan-allow": "lab/test-values.yml  # throwaway lab value\nlab/key.yml  # tries to hide a key\n",
    }
    result = scan(git_tree(tmp_path, files))
    assert result.returncode == 1
    assert "lab/key.yml:2: private key (PEM block)" in result.stdout, result.stdout
    assert "lab/test-values.yml" not in result.stdout, result.stdout


@pytest.mark.parametrize(
    "allow,finding",
    [
        ("lab/test-values.yml\n", "entry 'lab/test-values.yml' gives no reason"),
        ("lab/test-values.yml  # throwaway\nlab/gone.yml  # was here once\n", "entry 'lab/gone.yml' matches no file"),
    ],
)
def test_allow_list_entries_need_a_reason_and_a_file(tmp_path, allow, finding):
    files = {"lab/test-values.yml": "lab_password: throwaway-lab-only\n", ".secret-scan-allow": allow}
    result = scan(git_tree(tmp_path, files))
    assert result.returncode == 1
    assert finding in result.stdout, result.stdout
