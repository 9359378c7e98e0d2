# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cluster snapshots: what playbooks/snapshot.yml writes and what verify reads back.

A snapshot is a folder with one file per resource, ``<resource>.json``, holding what
``kubectl get <resource> -A -o json`` prints (a ``v1`` ``List``). Secrets are reduced to their names,
type, labels and annotations: their data never leaves the cluster; the SHA-256 fingerprints of the public
certificates in a TLS Secret (``tls.crt``, ``ca.crt``) are kept as annotations, so a report can name the
CA that issued the UI certificate.

Standard library only (runs on the control machine and the hosts).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import re

FINGERPRINT_ANNOTATION = "pi-cluster.stratdata.org/%s-sha256"
# Annotations that may carry a Secret's data (kubectl apply keeps the whole object in one).
_DATA_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")


def pem_sha256_fingerprint(pem):
    """SHA-256 fingerprint (``AB:CD:...``, as ``openssl x509 -fingerprint -sha256`` prints it) of the first
    certificate of a PEM text; None when there is none."""
    if isinstance(pem, bytes):
        pem = pem.decode("ascii", "replace")
    if not isinstance(pem, str):
        return None
    match = _PEM_RE.search(pem)
    if not match:
        return None
    try:
        der = base64.b64decode("".join(match.group("body").split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def secret_metadata(secret):
    """A Secret without its data: apiVersion, kind, type, and metadata without data-carrying annotations,
    plus the fingerprints of the certificates ``tls.crt`` and ``ca.crt`` (public) as annotations."""
    if not isinstance(secret, dict):
        return secret
    metadata = dict(secret.get("metadata") or {}) if isinstance(secret.get("metadata"), dict) else {}
    annotations = dict(metadata.get("annotations") or {}) if isinstance(metadata.get("annotations"), dict) else {}
    for key in _DATA_ANNOTATIONS:
        annotations.pop(key, None)
    metadata.pop("managedFields", None)
    data = secret.get("data") if isinstance(secret.get("data"), dict) else {}
    for key in ("tls.crt", "ca.crt"):
        value = data.get(key)
        if not isinstance(value, str):
            continue
        try:
            pem = base64.b64decode(value, validate=True).decode("ascii", "replace")
        except (binascii.Error, ValueError):
            continue
        fingerprint = pem_sha256_fingerprint(pem)
        if fingerprint:
            annotations[FINGERPRINT_ANNOTATION % key] = fingerprint
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    stripped = {"apiVersion": secret.get("apiVersion", "v1"), "kind": secret.get("kind", "Secret"),
                "metadata": metadata}
    if "type" in secret:
        stripped["type"] = secret["type"]
    return stripped


def kubectl_list(resources, kind=None, api_version=None):
    """``kubectl get -o json`` output for a list of objects (a kubernetes.core.k8s_info ``resources``).

    Like kubectl, every item carries ``apiVersion`` and ``kind`` (the API's list items may omit them).
    Secrets (``kind`` Secret, or objects of kind Secret) are reduced by secret_metadata.
    """
    items = []
    for obj in resources or []:
        if isinstance(obj, dict):
            obj = dict(obj)
            if kind and not obj.get("kind"):
                obj["kind"] = kind
            if api_version and not obj.get("apiVersion"):
                obj["apiVersion"] = api_version
            if obj.get("kind") == "Secret":
                obj = secret_metadata(obj)
        items.append(obj)
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}
