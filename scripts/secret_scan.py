#!/usr/bin/env python3
"""Fail on any plaintext secret in the tree.

Rules:
- every vault file (vault.yml / vault.yaml / *.vault.yml) must be ansible-vault encrypted;
- no private keys, cloud access keys or tokens anywhere;
- no YAML key that names a secret (password, token, secret, access_key, ...) holding a literal value:
  secrets come from vault variables ({{ vault_* }}) or Kubernetes Secrets.
Files in .secret-scan-allow (one path per line, each with a reason after '#') are skipped.
Usage: secret_scan.py [ROOT]   (scans git-tracked and untracked, non-ignored files)
"""

import re
import subprocess
import sys
from pathlib import Path

VAULT_NAME_RE = re.compile(r"(^|/)(vault\.ya?ml|[^/]+\.vault\.ya?ml)$")
CONTENT_RULES = [
    ("private key", re.compile(r"-----BEGIN (RSA |EC |OPENSSH |DSA |PGP )?PRIVATE KEY( BLOCK)?-----")),
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}\b")),
]
SECRET_KEY_RE = re.compile(
    r"""^\s*-?\s*["']?([A-Za-z0-9_.-]*(password|passwd|secret|token|access_key|secret_key|fernet_key|api_key|private_key)"""
    r"""[A-Za-z0-9_.-]*)["']?\s*[:=]\s*(.+?)\s*$""",
    re.IGNORECASE,
)
# Values that are not secrets: templating, references, placeholders, empty values, booleans, names.
SAFE_VALUE_RE = re.compile(
    r"""^(["']?\{\{.*\}\}["']?|["']?[*!]["']?|["']{2}|null|~|true|false|["']?(yes|no)["']?|\[\]|\{\}|[|>][-+]?|!vault.*|\$\{?[A-Z_]+\}?.*|"""
    r"""["']?<[^>]+>["']?|["']?(REDACTED|CHANGE_ME|changeme)["']?|lookup\(.*|[A-Za-z0-9_.-]*(Secret|Name|_name|-secret|-credentials|Key)["']?)$"""
)
# Keys that name a Secret object or a file instead of holding a secret: existingSecret, jwtSecretName, ...
REFERENCE_KEY_RE = re.compile(r"(name|secret|secretref|ref|file|path|enabled|mode|policy|keys?_?var)$", re.IGNORECASE)
# Inside a Jinja dict literal ('token': k3s_server_token,) the value is a variable, not a secret.
JINJA_DICT_ENTRY_RE = re.compile(r"""^\s*['"][^'"]+['"]\s*:\s*[a-z_][a-z0-9_.]*(\s*\|[^,]*)?,?\s*$""")
SCANNED_SUFFIXES = {".yml", ".yaml", ".j2", ".cfg", ".ini", ".env", ".json", ".txt", ".conf", ".sh", ".py", ".md", ""}


def tracked_files(root):
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


def allowed_paths(root):
    allow = root / ".secret-scan-allow"
    if not allow.exists():
        return set()
    paths = set()
    for line in allow.read_text().splitlines():
        path = line.split("#", 1)[0].strip()
        if path:
            paths.add(path)
    return paths


def scan_file(rel, text):
    findings = []
    if VAULT_NAME_RE.search(rel) and not text.startswith("$ANSIBLE_VAULT;"):
        findings.append((rel, 1, "vault file is not encrypted with ansible-vault"))
        return findings
    if text.startswith("$ANSIBLE_VAULT;"):
        return findings
    yaml_like = rel.endswith((".yml", ".yaml", ".j2"))
    for lineno, line in enumerate(text.splitlines(), 1):
        for name, rule in CONTENT_RULES:
            if rule.search(line):
                findings.append((rel, lineno, name))
        if yaml_like and not line.lstrip().startswith("#"):
            match = SECRET_KEY_RE.match(line)
            if match and not REFERENCE_KEY_RE.search(match.group(1)) and not JINJA_DICT_ENTRY_RE.match(line):
                value = match.group(3).split(" #", 1)[0].strip()
                if value and not SAFE_VALUE_RE.match(value):
                    findings.append((rel, lineno, "literal value for secret-like key '%s'" % match.group(1)))
    return findings


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    allow = allowed_paths(root)
    findings = []
    count = 0
    for rel in tracked_files(root):
        path = root / rel
        if rel in allow or path.is_symlink() or not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        count += 1
        findings += scan_file(rel, text)
    for rel, lineno, what in findings:
        print("%s:%d: %s" % (rel, lineno, what))
    print("secret scan: %d files scanned, %d finding(s)" % (count, len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
