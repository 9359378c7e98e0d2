#!/usr/bin/env python3
"""Fail on any plaintext secret in the tree.

Two scanners run on every git-tracked (and untracked, non-ignored) text file:

1. detect-secrets (Yelp, pinned in requirements-dev.txt) with its default plugins: keywords, high-entropy
   strings, private keys, URLs with credentials, cloud and service tokens.
2. Our vault-aware rules, which know Ansible and Kubernetes:
   - every vault file (vault.yml / vault.yaml / *.vault.yml) must be ansible-vault encrypted;
   - a key that names a secret (``*_secret``, ``*_password``, ``*_token``, ``*_key``, ``*Key``, passphrase,
     credentials ...) may hold only a reference: Jinja (``"{{ vault_x }}"``), an ``!vault |`` block, an
     environment variable, an empty value or a placeholder. Keys that *name* a Secret object or a file by
     convention (``existingSecret``, ``*SecretName``, ``*_secret_name``, ``*_file``, ``*_path`` ...) are
     not secrets; a snake_case ``*_secret`` key is one, whatever its value looks like;
   - URLs that carry a user and a password before the host, unless the password is a reference;
   - PEM private key blocks;
   - ``data:`` entries of a Kubernetes Secret (base64 is an encoding, not a protection).

Explicit exceptions, nothing implicit:
- a line carrying detect-secrets' own marker ``pragma: allowlist secret`` (e.g. a variable holding the
  *name* of a Secret object in a snake_case ``*_secret`` key);
- paths (or shell globs) in ``.secret-scan-allow``, each with its reason after ``#``: throwaway test and
  lab values. An entry without a reason, or that matches no file, is itself an error. Allowed files are
  still checked for private keys and service tokens.

Usage: secret_scan.py [ROOT]   (exit status 1 on any finding)
"""

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

PRAGMA = "pragma: allowlist secret"
VAULT_HEADER = "$ANSIBLE_VAULT;"
VAULT_NAME_RE = re.compile(r"(^|/)(vault\.ya?ml|[^/]+\.vault\.ya?ml)$")
SCANNED_SUFFIXES = {".yml", ".yaml", ".j2", ".cfg", ".ini", ".env", ".json", ".txt", ".conf", ".sh", ".py", ".md",
                    ".toml", ".pem", ".key", ""}
YAML_SUFFIXES = (".yml", ".yaml", ".j2")

# High-confidence content rules: they also run on allow-listed files.
CONTENT_RULES = [
    ("private key (PEM block)", re.compile(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")),
    ("AWS access key id", re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")),
    ("GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
    ("Slack token", re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}\b")),
]
# detect-secrets plugins whose findings also count in allow-listed files.
STRONG_PLUGINS = {"Private Key", "AWS Access Key", "GitHub Token", "Slack Token", "GitLab Token",
                  "Stripe Access Key", "OpenAI Token", "PyPI Token", "NPM tokens"}

# A YAML (or Jinja-in-YAML) line "key: value" / "- key: value" / "'key': value".
KEY_VALUE_RE = re.compile(r"""^(\s*)(?:-\s+)?["']?([A-Za-z0-9_.\-/]+)["']?\s*:(?:\s+(.*?))?\s*$""")
# Key names that hold a secret (snake_case, kebab-case, dotted or camelCase).
SECRET_KEY_RE = re.compile(
    r"(password|passwd|passphrase|secret|token|credentials?|[a-z0-9][_.-]key|[a-z0-9]Key|apikey|fernetkey)$"
    r"|(^|[_.-])(password|passwd|secret|token)([_.-]|$)",
    re.IGNORECASE,
)
# Key names that name a Secret object, a key inside one, a file, a path or a switch: never a secret.
# Case matters: Helm's camelCase "existingSecret" names a Secret; our snake_case "*_secret" holds one.
REFERENCE_KEY_RE = re.compile(
    r"([a-z0-9](Name|Secret|Ref|File|Path|Dir|Enabled|Mode|Policy|Type|Length|Authentication|Keys|KeyRef|PasswordKey"
    r"|UserKey|TokenKey)|^name|(?i:[_.-](name|ref|file|path|dir|var|enabled|mode|policy|type|length|hash|keys)))$"
)
# Values that are not secrets: Jinja or vault references, environment variables, placeholders, empties.
SAFE_VALUE_RE = re.compile(
    r"""^(.*\{\{.*\}\}.*|!vault\b.*|["']{2}|null|~|true|false|["']?(yes|no)["']?|\[\]|\{\}|[|>][-+]?\d*"""
    r"""|["']?[*!]["']?|["']?\$\{?[A-Za-z_][A-Za-z0-9_]*\}?["']?|["']?<[^<>]+>["']?|["']?(REDACTED|CHANGE_ME)["']?"""
    r"""|-?\d+(\.\d+)?)$"""
)
# Inside a Jinja dict literal ('token': k3s_server_token,) the value is a variable, not a secret.
JINJA_DICT_ENTRY_RE = re.compile(r"""^\s*['"][^'"]+['"]\s*:\s*[a-z_][a-z0-9_.]*(\s*\|[^,]*)?,?\s*$""")
URL_CREDENTIALS_RE = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/:@'\"]+:([^\s/@'\"]+)@")
URL_SAFE_PASSWORD_RE = re.compile(
    r"^(\{\{.*\}\}|\{[a-z_]*\}|%\(?[a-z_]*\)?s|\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|<[^<>]+>|\*+)$"
)
SECRET_KIND_RE = re.compile(r"""^\s*["']?kind["']?\s*:\s*["']?Secret["']?\s*,?\s*$""")
DATA_KEY_RE = re.compile(r"""^(\s*)["']?data["']?\s*:\s*(\{?)\s*$""")


def tracked_files(root):
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode()
    return [p for p in out.split("\0") if p]


def read_allow_list(root, files):
    """(patterns, errors): the .secret-scan-allow entries, each of which must give a reason and match a file."""
    allow = root / ".secret-scan-allow"
    patterns, errors = [], []
    if not allow.exists():
        return patterns, errors
    for lineno, line in enumerate(allow.read_text().splitlines(), 1):
        entry, _, reason = line.partition("#")
        entry = entry.strip()
        if not entry:
            continue
        if not reason.strip():
            errors.append((".secret-scan-allow", lineno, "entry '%s' gives no reason after '#'" % entry))
        elif not any(fnmatch.fnmatchcase(rel, entry) for rel in files):
            errors.append((".secret-scan-allow", lineno, "entry '%s' matches no file (stale)" % entry))
        patterns.append(entry)
    return patterns, errors


def is_reference_value(value):
    return not value or bool(SAFE_VALUE_RE.match(value))


def yaml_key_findings(lines):
    """Our vault-aware rule for YAML and Jinja-templated YAML: secret-like keys must hold references."""
    findings = []
    for lineno, line in enumerate(lines, 1):
        if line.lstrip().startswith("#") or PRAGMA in line:
            continue
        match = KEY_VALUE_RE.match(line)
        if not match or JINJA_DICT_ENTRY_RE.match(line):
            continue
        key, value = match.group(2), (match.group(3) or "")
        value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        leaf = re.split(r"[./]", key)[-1]
        if not SECRET_KEY_RE.search(leaf) or REFERENCE_KEY_RE.search(leaf):
            continue
        if not is_reference_value(value) and not value.startswith(("{", "[")):  # flow collections: their keys count
            findings.append((lineno, "literal value for secret-like key '%s'" % key))
    return findings


def secret_data_findings(lines):
    """`data:` entries of a Kubernetes Secret: base64 is readable by anyone, so they are plaintext here."""
    findings = []
    in_secret, data_indent = False, None
    for lineno, line in enumerate(lines, 1):
        if line.startswith("---"):
            in_secret, data_indent = False, None
            continue
        if SECRET_KIND_RE.match(line):
            in_secret = True
        if data_indent is not None:
            if line.strip() and (len(line) - len(line.lstrip())) <= data_indent:
                data_indent = None
            elif PRAGMA not in line:
                match = KEY_VALUE_RE.match(line)
                if match and not is_reference_value(re.split(r"\s+#", match.group(3) or "", maxsplit=1)[0]):
                    findings.append((lineno, "data of a Kubernetes Secret '%s' (base64 is not encryption)"
                                     % match.group(2)))
                continue
        match = DATA_KEY_RE.match(line)
        if match and in_secret:
            data_indent = len(match.group(1))
    return findings


def json_secret_findings(text):
    """A Kubernetes Secret with data in a JSON file (kubectl get -o json, List or single object)."""
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    objects = doc.get("items", [doc]) if isinstance(doc, dict) else []
    return [(1, "data of a Kubernetes Secret '%s' in JSON" % obj.get("metadata", {}).get("name", "?"))
            for obj in objects if isinstance(obj, dict) and obj.get("kind") == "Secret"
            and (obj.get("data") or obj.get("stringData"))]


def our_findings(rel, text, allowed):
    """Findings of the vault-aware rules as (line, what)."""
    if VAULT_NAME_RE.search(rel) and not text.startswith(VAULT_HEADER):
        return [(1, "vault file is not encrypted with ansible-vault")]
    if text.startswith(VAULT_HEADER):
        return []
    lines = text.splitlines()
    findings = []
    for lineno, line in enumerate(lines, 1):
        if PRAGMA in line:
            continue
        for name, rule in CONTENT_RULES:
            if rule.search(line):
                findings.append((lineno, name))
        if not allowed:
            for match in URL_CREDENTIALS_RE.finditer(line):
                if not URL_SAFE_PASSWORD_RE.match(match.group(1)):
                    findings.append((lineno, "URL with credentials"))
    if allowed:
        return findings
    if rel.endswith(YAML_SUFFIXES):
        findings += yaml_key_findings(lines)
        findings += secret_data_findings(lines)
    elif rel.endswith(".json"):
        findings += json_secret_findings(text)
    return findings


def detect_secrets_findings(root, rels, allowed):
    """detect-secrets with its default plugins; only the strong plugins count in allow-listed files."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    found = {}
    with default_settings():
        collection = SecretsCollection(root=str(root))
        for rel in rels:  # in this process: scan_files() starts a process pool, ~50x slower here
            collection.scan_file(rel)
        for rel, secrets in collection.data.items():
            for secret in secrets:
                if rel in allowed and secret.type not in STRONG_PLUGINS:
                    continue
                found.setdefault(rel, []).append((secret.line_number, "detect-secrets: %s" % secret.type))
    return found


def vault_reference_line(line):
    """A detect-secrets hit on a line whose value is a Jinja/vault reference, or whose key names a Secret
    object or a file (secretName, existingSecret, *_file), is not a secret."""
    if JINJA_DICT_ENTRY_RE.match(line):
        return True
    match = KEY_VALUE_RE.match(line.rstrip().rstrip(","))
    if not match:
        return False
    value = re.split(r"\s+#", match.group(3) or "", maxsplit=1)[0].strip()
    return is_reference_value(value) or bool(REFERENCE_KEY_RE.search(re.split(r"[./]", match.group(2))[-1]))


def scan(root, rels, allow_patterns=()):
    """All findings as sorted (path, line, what) over the given relative paths."""
    allowed = {rel for rel in rels if any(fnmatch.fnmatchcase(rel, p) for p in allow_patterns)}
    texts = {}
    for rel in rels:
        path = root / rel
        if path.is_symlink() or not path.is_file() or path.suffix not in SCANNED_SUFFIXES:
            continue
        try:
            texts[rel] = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
    findings = set()
    for rel, text in texts.items():
        for lineno, what in our_findings(rel, text, rel in allowed):
            findings.add((rel, lineno, what))
    plain = [rel for rel, text in texts.items() if not text.startswith(VAULT_HEADER)]
    for rel, hits in detect_secrets_findings(root, plain, allowed).items():
        lines = texts[rel].splitlines()
        for lineno, what in hits:
            line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
            if rel not in allowed and vault_reference_line(line):
                continue
            findings.add((rel, lineno, what))
    return sorted(findings), len(texts)


def main(argv):
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    rels = tracked_files(root)
    patterns, errors = read_allow_list(root, rels)
    findings, count = scan(root, rels, patterns)
    findings = errors + findings
    for rel, lineno, what in findings:
        print("%s:%d: %s" % (rel, lineno, what))
    print("secret scan (detect-secrets + vault-aware rules): %d files scanned, %d finding(s)" % (count, len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
