# -*- coding: utf-8 -*-
# Copyright: pi-cluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ingress findings: the UI answer and where its TLS certificate comes from."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.stratdata.pi_cluster.plugins.module_utils.snapshot import (
    FINGERPRINT_ANNOTATION,
)
from ansible_collections.stratdata.pi_cluster.plugins.module_utils.assessment.objects import (
    CRITICAL,
    OK,
    SKIPPED,
    WARN,
    _as_int,
    _dict,
    finding,
    format_time,
    meta,
    ref,
)

# UI ---------------------------------------------------------------------------------------------------

def _ingress_for(ingresses, host):
    for ingress in ingresses:
        spec = ingress.get("spec") or {}
        hosts = [r.get("host") for r in spec.get("rules") or []]
        if host in hosts:
            tls_hosts = [h for t in spec.get("tls") or [] for h in t.get("hosts") or []]
            secret = next((t.get("secretName") for t in spec.get("tls") or [] if host in (t.get("hosts") or [])), None)
            return ingress, host in tls_hosts, secret
    return None, False, None


def check_ui(ctx):
    fid = "ui.ingress"
    host = ctx.options["ingress_host"]
    ingress, has_tls, secret = _ingress_for(ctx.ingresses, host)
    ui = ctx.state.get("ui")
    ui = _dict(ui) if ui is not None else None
    evidence = []
    if ingress is not None:
        lb = [i.get("ip") or i.get("hostname") for i in ((ingress.get("status") or {}).get("loadBalancer") or {}).get(
            "ingress") or []]
        lb = [address for address in lb if address]
        evidence.append("Ingress %s: host %s, TLS %s, address %s" % (
            ref(ingress), host, "secret %s" % secret if has_tls else "NOT configured", ", ".join(lb) or "none"))
    else:
        evidence.append("no Ingress with host %s" % host)
    if not ui or ui.get("skipped"):
        evidence.append("the HTTPS request was not made")
        return finding(fid, "UI on https://%s not checked" % host, SKIPPED, evidence)
    code = _as_int(ui.get("status"))
    message = str(ui.get("msg") or "")
    url = ui.get("url") or "https://%s/" % host
    evidence.append("GET %s (certificate validated): HTTP %s%s" % (
        url, ui.get("status"), "" if not ui.get("failed") and 200 <= (code or 0) < 400 else " \u2014 %s" % message))
    tls_error = any(word in message.lower() for word in ("certificate", "ssl", "tls", "hostname"))
    if tls_error:
        return finding(
            fid, "UI certificate on %s is not valid" % host, CRITICAL, evidence,
            root_cause="The ingress serves a certificate the client does not trust for this name (self-signed k3s "
                       "default, expired, or cert-manager has not issued it).",
            impact="Browsers and API clients refuse the connection.",
            resolution="Check the TLS secret%s and the cert-manager Certificate/Order for %s." % (
                " %s" % secret if secret else "", host),
        )
    if ui.get("failed") or not code or not 200 <= code < 400:
        return finding(
            fid, "UI on %s does not answer" % host, CRITICAL, evidence,
            root_cause=("No Ingress routes the host" if ingress is None else
                        "The ingress controller, the api-server Service or DNS for the host is broken."),
            impact="Nobody can use the Airflow UI.",
            resolution="`kubectl -n airflow get ingress,svc,endpoints`; check the api-server pods and DNS for "
                       "%s." % host,
        )
    if ingress is None or not has_tls:
        return finding(fid, "UI answers, but the Ingress for %s is not as expected" % host, WARN, evidence,
                       root_cause="The host answers through another route, or the Ingress has no TLS section.",
                       impact="TLS may not be managed by the cluster.",
                       resolution="Manage the Ingress and its TLS secret with the airflow role.")
    return finding(fid, "UI answers on https://%s with a valid certificate" % host, OK, evidence)


# TLS ----------------------------------------------------------------------------------------------
# Where the certificate Traefik serves for the UI host comes from: the Ingress names a TLS Secret; that
# Secret exists (else Traefik falls back to its own self-signed default certificate); cert-manager wrote
# it for a Certificate (annotations cert-manager.io/certificate-name, issuer-name, issuer-kind), issued by
# a ClusterIssuer of type ca (the cluster CA), acme or selfSigned; or the user provided it. The snapshot
# keeps Secrets' names, type and annotations only; the fingerprints of the public certificates in them
# are added by secret_metadata() as annotations.

def _find(objs, namespace, name):
    for obj in objs:
        if meta(obj, "name") == name and (namespace is None or meta(obj, "namespace") == namespace):
            return obj
    return None


def _ready(obj):
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True", cond.get("message") or cond.get("reason") or ""
    return False, "no Ready condition"


def check_tls(ctx):
    fid = "ingress.tls"
    host = ctx.options["ingress_host"]
    ingress, has_tls, secret_name = _ingress_for(ctx.ingresses, host)
    traefik = dict(
        root_cause="Nothing issued a certificate for the host: without a TLS Secret Traefik answers with its own "
                   "self-signed default certificate (CN TRAEFIK DEFAULT CERT), which no client trusts.",
        impact="Browsers warn, API clients and verify's certificate check refuse the UI.",
        resolution="Set airflow_ingress_cert_manager_issuer (cert-manager's cluster CA issuer, the default) or "
                   "provide a TLS Secret, then `ansible-playbook site.yml --tags airflow`; import the cluster CA "
                   "certificate into your browser.")
    if ingress is None:
        return finding(fid, "No Ingress for %s: TLS not checked" % host, SKIPPED, ["no Ingress with host %s" % host])
    namespace = meta(ingress, "namespace")
    if not has_tls:
        return finding(fid, "Traefik's default certificate on %s: the Ingress has no TLS section" % host, CRITICAL,
                       ["Ingress %s: host %s without spec.tls" % (ref(ingress), host)], **traefik)
    evidence = ["Ingress %s: host %s, TLS secret %s" % (ref(ingress), host, secret_name)]
    if ctx.state.get("secrets") is None:
        return finding(fid, "TLS secret of %s not read" % host, SKIPPED,
                       evidence + ["not collected: the Secrets (names only) were not read"])
    secret = _find(ctx.secrets, namespace, secret_name)
    if secret is None:
        evidence.append("Secret %s/%s does not exist" % (namespace, secret_name))
        return finding(fid, "Traefik's default certificate on %s: TLS secret %s missing" % (host, secret_name),
                       CRITICAL, evidence, **traefik)
    annotations = meta(secret, "annotations") or {}
    cert_name = annotations.get("cert-manager.io/certificate-name")
    certificate = _find(ctx.certificates, namespace, cert_name) if cert_name else None
    if certificate is None:
        certificate = next((c for c in ctx.certificates if meta(c, "namespace") == namespace and
                            (c.get("spec") or {}).get("secretName") == secret_name), None)
    ca_print = annotations.get(FINGERPRINT_ANNOTATION % "ca.crt")
    if certificate is None and not annotations.get("cert-manager.io/issuer-name"):
        evidence.append("Secret %s (%s) is not managed by cert-manager: provided by the user" % (
            ref(secret), secret.get("type") or "no type"))
        if annotations.get(FINGERPRINT_ANNOTATION % "tls.crt"):
            evidence.append("certificate SHA-256 fingerprint %s" % annotations[FINGERPRINT_ANNOTATION % "tls.crt"])
        return finding(fid, "UI certificate on %s from a user-provided Secret" % host, OK, evidence)
    issuer_ref = (certificate or {}).get("spec", {}).get("issuerRef") or {}
    issuer_name = issuer_ref.get("name") or annotations.get("cert-manager.io/issuer-name")
    issuer_kind = issuer_ref.get("kind") or annotations.get("cert-manager.io/issuer-kind") or "Issuer"
    if certificate is not None:
        ready, why = _ready(certificate)
        evidence.append("Certificate %s: Ready=%s%s, issuer %s %s" % (
            ref(certificate), ready, " (%s)" % why if why else "", issuer_kind, issuer_name))
        not_after = (certificate.get("status") or {}).get("notAfter")
        if not_after:
            evidence.append("valid until %s" % format_time(not_after))
        if not ready:
            return finding(
                fid, "Certificate %s not issued: Traefik serves its default certificate on %s" % (
                    ref(certificate), host), CRITICAL, evidence,
                root_cause="cert-manager has not issued the Certificate (%s); until it does the Secret holds no "
                           "certificate for the host." % (why or "not Ready"),
                impact=traefik["impact"],
                resolution="`kubectl -n %s describe certificate %s` and the CertificateRequest/Order; check the "
                           "%s %s." % (namespace, meta(certificate, "name"), issuer_kind, issuer_name))
    issuers = ctx.clusterissuers if issuer_kind == "ClusterIssuer" else [
        i for i in ctx.issuers if meta(i, "namespace") == namespace]
    issuer = _find(issuers, None, issuer_name)
    spec = (issuer or {}).get("spec") or {}
    wanted = ctx.options.get("cluster_issuer")
    if issuer is None:
        evidence.append("%s %s: not collected or not found" % (issuer_kind, issuer_name))
        kind_text = "issuer %s" % issuer_name
    elif "ca" in spec:
        kind_text = "the cluster CA"
        evidence.append("%s %s: CA issuer, CA secret %s" % (issuer_kind, issuer_name,
                                                              (spec.get("ca") or {}).get("secretName")))
    elif "acme" in spec:
        kind_text = "ACME (%s)" % ((spec.get("acme") or {}).get("server") or "?")
        evidence.append("%s %s: ACME issuer" % (issuer_kind, issuer_name))
    elif "selfSigned" in spec:
        evidence.append("%s %s: self-signed issuer" % (issuer_kind, issuer_name))
        return finding(fid, "UI certificate on %s is self-signed (issuer %s)" % (host, issuer_name), WARN, evidence,
                       root_cause="The issuer signs each certificate with its own key: nothing to import and trust.",
                       impact="Every client must skip certificate validation.",
                       resolution="Use the cluster CA issuer (a CA issuer whose certificate users can import).")
    else:
        kind_text = "issuer %s" % issuer_name
    if ca_print:
        evidence.append("CA certificate SHA-256 fingerprint %s" % ca_print)
    if wanted and issuer_name != wanted:
        evidence.append("expected issuer %s (airflow_ingress_cert_manager_issuer)" % wanted)
        return finding(fid, "UI certificate on %s issued by %s, not by %s" % (host, issuer_name, wanted), WARN,
                       evidence, root_cause="The Certificate names another issuer than the configured one.",
                       impact="Clients that trust the configured CA refuse the certificate.",
                       resolution="Re-run `ansible-playbook site.yml --tags airflow`.")
    return finding(fid, "UI certificate on %s issued by %s (%s %s)" % (host, kind_text, issuer_kind, issuer_name),
                   OK, evidence, ca_fingerprint=ca_print)
