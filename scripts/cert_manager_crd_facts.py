#!/usr/bin/env python3
"""Record the cert-manager CRD schema facts the offline tests validate against.

Development helper (needs the cert-manager sources of the pinned chart checked out somewhere, never
committed), e.g. from the v1.21.1 tag of github.com/cert-manager/cert-manager:

    python3 scripts/cert_manager_crd_facts.py /tmp/cert-manager/deploy/crds v1.21.1 \\
        > tests/data/cert-manager-v1.21.1-crd-facts.json

For Certificate, Issuer and ClusterIssuer (version v1) it keeps the openAPIV3Schema of ``spec`` without
descriptions, and prunes the subtrees the collection never sets (ACME DNS-01 solvers, the HTTP-01 solver's
pod/ingress templates and Gateway API route, Venafi/Vault issuers) to ``{"type": "object"}``. Every object
schema that lists properties gets ``additionalProperties: false``, so an unknown key is an error, as with
``kubectl apply --validate=strict``.
"""

import json
import sys
from pathlib import Path

import yaml

KINDS = {"Certificate": "cert-manager.io_certificates.yaml", "Issuer": "cert-manager.io_issuers.yaml",
         "ClusterIssuer": "cert-manager.io_clusterissuers.yaml"}
PRUNE = [("acme", "solvers", "items", "dns01"),
         ("acme", "solvers", "items", "http01", "ingress", "podTemplate"),
         ("acme", "solvers", "items", "http01", "ingress", "ingressTemplate"),
         ("acme", "solvers", "items", "http01", "gatewayHTTPRoute"),
         ("venafi",), ("vault",)]


def strip(node, path=()):
    if isinstance(node, dict):
        if any(path[-len(p):] == p for p in PRUNE if len(path) >= len(p)):
            return {"type": "object"}
        out = {}
        for key, value in node.items():
            if key == "description":
                continue
            child = path + (key,) if key not in ("properties",) else path
            if key == "properties":
                out[key] = {name: strip(sub, path + (name,)) for name, sub in value.items()}
            elif key == "items":
                out[key] = strip(value, path + ("items",))
            else:
                out[key] = strip(value, child) if isinstance(value, (dict, list)) else value
        if "properties" in out and "additionalProperties" not in out and \
                not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strip(value, path) for value in node]
    return node


def main(crd_dir, version):
    facts = {"source": "github.com/cert-manager/cert-manager %s deploy/crds (Apache-2.0), recorded by "
                       "scripts/cert_manager_crd_facts.py: spec schemas only, descriptions removed, unused "
                       "subtrees pruned, unknown keys rejected" % version, "kinds": {}}
    for kind, name in KINDS.items():
        crd = yaml.safe_load((Path(crd_dir) / name).read_text())
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
        schema = served["schema"]["openAPIV3Schema"]
        facts["kinds"][kind] = {"group": crd["spec"]["group"], "scope": crd["spec"]["scope"],
                                "spec": strip(schema["properties"]["spec"]),
                                "spec_required": "spec" in schema.get("required", [])}
    json.dump(facts, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
