"""Tests of the Helm chart (helm/switchyard) with the real Helm v4 engine (helm-python-sdk).

    chart_test.py sets      render every value set in VALUE_SETS, validate it with
                            `kubernetes-validate --strict` for Kubernetes 1.29 and the newest schema
                            shipped (a WARN fails too), `helm lint --strict`, and structural checks
    chart_test.py invalid   values a user could get wrong fail with the message they need
    chart_test.py render    print the default render (release `switchyard`, namespace `mesh`) as a
                            JSON list of objects, for the e2e test that runs the chart's commands

Each check prints one line; the last line is `chart <what>: N passed` (non-zero exit on failure).
Driven by tests/e2e/chart.rs.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import helm_python as helm
import yaml
from helm_python import _native
from kubernetes_validate.utils import latest_version

from chart_checks import check_render

CHART = Path(__file__).resolve().parents[2] / "helm" / "switchyard"
RELEASE, NAMESPACE = "switchyard", "mesh"
KUBE_VERSIONS = ["1.29.0", latest_version()]
EXAMPLE_AGENTS = ["echo", "keywords", "research", "summarize", "textstats"]

# name -> (values, enabled agents). Each set is also linted and schema-validated.
VALUE_SETS = {
    "defaults": ({}, EXAMPLE_AGENTS),
    "ha": (yaml.safe_load((CHART / "values-ha.yaml").read_text()), EXAMPLE_AGENTS),
    "tracing": (
        {"tracing": {"enabled": True, "otlpEndpoint": "http://jaeger-collector.obs:4317"}},
        EXAMPLE_AGENTS,
    ),
    "jaeger": ({"jaeger": {"enabled": True}}, EXAMPLE_AGENTS),
    "agent-added": (
        {
            "agents": {
                "translate": {
                    "image": {"repository": "registry.example.com/translate", "tag": "1.4.2"},
                    "command": ["/app/translate"],
                    "args": ["--model", "small"],
                    "port": 9000,
                    "allowFrom": ["research"],
                },
                "research": {"calls": ["textstats", "summarize", "keywords", "translate"]},
                "echo": {"enabled": False},
            }
        },
        ["keywords", "research", "summarize", "textstats", "translate"],
    ),
    "networkpolicy-off": ({"networkPolicy": {"enabled": False}}, EXAMPLE_AGENTS),
    "hpa": (
        {
            "gateway": {"autoscaling": {"enabled": True}},
            "agentDefaults": {"store": {"type": "memory"}, "autoscaling": {"enabled": True}},
        },
        EXAMPLE_AGENTS,
    ),
    "postgres-replicas": (
        {
            "agentDefaults": {"store": {"type": "postgres", "existingSecret": "mesh-store"}},
            "agents": {
                "echo": {"replicas": 3},
                "summarize": {"store": {"secretKey": "url"}, "autoscaling": {"enabled": True}},
            },
        },
        EXAMPLE_AGENTS,
    ),
    "persistent-ingress": (
        {
            "agentDefaults": {"store": {"persistence": {"enabled": True, "size": "2Gi"}}},
            "gateway": {"ingress": {"enabled": True, "className": "nginx"}},
            "podAntiAffinity": "hard",
        },
        EXAMPLE_AGENTS,
    ),
}

# (values, text the error must contain)
INVALID = {
    "unknown key": ({"gatway": {"replicas": 2}}, "additional properties 'gatway' not allowed"),
    "unknown agent key": (
        {"agents": {"echo": {"replica": 2}}},
        "at '/agents/echo': additional properties 'replica' not allowed",
    ),
    "wrong type": ({"gateway": {"replicas": "two"}}, "at '/gateway/replicas': got string, want integer"),
    "bad enum": ({"agents": {"echo": {"store": {"type": "mysql"}}}}, "/agents/echo/store/type"),
    "postgres without a secret": (
        {"agents": {"echo": {"store": {"type": "postgres"}}}},
        "agents.echo.store.type is postgres but agents.echo.store.existingSecret is empty",
    ),
    "bad agent name": ({"agents": {"Echo_2": {}}}, "Echo_2"),
    "grace below drain": ({"terminationGracePeriodSeconds": 10}, "/terminationGracePeriodSeconds"),
    "tracing without endpoint": (
        {"tracing": {"enabled": True}},
        "tracing.enabled is true but tracing.otlpEndpoint is empty",
    ),
    "sqlite with two replicas": (
        {"agents": {"echo": {"replicas": 2}}},
        "agents.echo: 2 replicas with the embedded SQLite task store",
    ),
    "sqlite with an autoscaler": (
        {"agents": {"echo": {"autoscaling": {"enabled": True}}}},
        "agents.echo: 10 replicas with the embedded SQLite task store",
    ),
    "call blocked by policy": (
        {"agents": {"textstats": {"allowFrom": []}}},
        "agents.research.calls names \"textstats\", but agents.textstats.allowFrom does not list \"research\"",
    ),
    "cert-manager without an issuer": (
        {"mtls": {"enabled": True, "certManager": {"enabled": True}}},
        "mtls.certManager.issuerRef.name is required",
    ),
    "metrics port equal to the gRPC port": (
        {"agents": {"echo": {"metricsPort": 50051}}},
        "agents.echo.metricsPort (50051) equals its port",
    ),
    "call to a disabled agent": (
        {"agents": {"keywords": {"enabled": False}}},
        "agents.research.calls names \"keywords\", which is not an enabled agent",
    ),
}


def render(values, api_versions=()):
    """Renders with the Helm engine; returns the list of objects (NOTES.txt left out)."""
    chart = helm.Chart.load(CHART)
    opts = {"name": RELEASE, "namespace": NAMESPACE, "is_install": True}
    if api_versions:
        opts["api_versions"] = list(api_versions)
    out = json.loads(
        _native.call_string("helm_render", chart._raw(), json.dumps(values), json.dumps(opts))
    )
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith(".txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def kube_validate(renders):
    """`kubernetes-validate --strict` of every render, once per Kubernetes version; a WARN line
    fails like an error. A canary render with a misspelt probe field proves the check bites."""
    canary = [json.loads(json.dumps(d)) for d in renders["defaults"] if d["kind"] == "Deployment"][:1]
    canary[0]["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["servce"] = "x"
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, docs in {**renders, "canary": canary}.items():
            files.append(Path(tmp) / f"{name}.yaml")
            files[-1].write_text(yaml.safe_dump_all(docs))
        for version in KUBE_VERSIONS:
            proc = subprocess.run(
                [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", "-k", version, *map(str, files)],
                capture_output=True,
                text=True,
            )
            lines = (proc.stdout + proc.stderr).splitlines()
            bad = [line for line in lines if "canary.yaml" not in line]
            assert proc.returncode != 0 and not bad, f"kubernetes-validate {version}:\n" + "\n".join(lines)
            assert any("canary.yaml" in line and "servce" in line for line in lines), lines


def lint(name, values):
    for version in KUBE_VERSIONS:
        report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{version}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, f"{name}: helm lint --strict (Kubernetes {version}): {problems}"


def run_sets():
    renders = {}
    for name, (values, agents) in VALUE_SETS.items():
        renders[name] = docs = render(values)
        lint(name, values)
        check_render(name, docs, values, agents, RELEASE, NAMESPACE)
        print(f"ok {name}: {len(docs)} objects, lint clean, structure as configured")
    kube_validate(renders)
    print(f"ok every set valid (--strict) for Kubernetes {' and '.join(KUBE_VERSIONS)}")
    passed = len(renders) + 1
    # A config change rolls the gateway: its checksum/config follows the registry ConfigMap.
    checksum = lambda docs: next(  # noqa: E731
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "switchyard-gateway"
    )["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert checksum(render({})) != checksum(render({"agents": {"echo": {"enabled": False}}}))
    print("ok checksum/config changes with the gateway's registry")
    # The PodMonitor exists only when the cluster serves its CRD.
    values = {"metrics": {"podMonitor": {"enabled": True}}}
    assert not [d for d in render(values) if d["kind"] == "PodMonitor"]
    monitors = [d for d in render(values, ["monitoring.coreos.com/v1/PodMonitor"]) if d["kind"] == "PodMonitor"]
    assert len(monitors) == 1, monitors
    ports = {e["port"] for e in monitors[0]["spec"]["podMetricsEndpoints"]}
    assert ports == {"metrics", "http"}, ports
    print("ok PodMonitor only with monitoring.coreos.com/v1")
    # Golden render of the defaults: a chart change shows up as a reviewable diff.
    # SWITCHYARD_UPDATE_GOLDEN=1 rewrites the file.
    golden = Path(__file__).parent / "golden" / "chart-defaults.yaml"
    text = yaml.safe_dump_all(renders["defaults"], sort_keys=True)
    if os.environ.get("SWITCHYARD_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text, f"the default render differs from {golden}: review, then rerun with SWITCHYARD_UPDATE_GOLDEN=1"
    print(f"ok default render matches {golden.name}")
    # The chart README documents every key of values.yaml.
    readme = (CHART / "README.md").read_text()
    keys = [k for k in leaf_keys(yaml.safe_load((CHART / "values.yaml").read_text())) if not k.startswith("agents.")]
    missing = [k for k in keys if not any(f"`{p}`" in readme for p in prefixes(k))]
    assert not missing, f"helm/switchyard/README.md does not document {missing}"
    print(f"ok README documents all {len(keys)} keys")
    check_mtls()
    print(f"chart value sets: {passed + 5} passed")


def check_mtls():
    """mTLS from Secrets, cert-manager Certificates opt-in, HTTPS at the gateway's edge."""
    issuer = {"name": "mesh-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    values = {
        "mtls": {"enabled": True, "trustDomain": "prod.example", "certManager": {"enabled": True, "issuerRef": issuer}},
        "gateway": {"tlsSecret": "edge-cert"},
    }
    docs = render(values)
    certs = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "Certificate"}
    assert set(certs) == {f"switchyard-{n}" for n in [*EXAMPLE_AGENTS, "gateway"]}, sorted(certs)
    assert certs["switchyard-research"]["uris"] == ["spiffe://prod.example/agent/research"], certs
    assert certs["switchyard-gateway"]["uris"] == ["spiffe://prod.example/gateway"], certs
    assert all(c["issuerRef"] == issuer and "client auth" in c["usages"] for c in certs.values()), certs
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = d["spec"]["template"]["spec"]
        name = d["metadata"]["name"]
        c = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env.get("SWITCHYARD_TLS_CERT") == "/etc/switchyard/tls/tls.crt", (name, env)
        secrets = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
        assert f"{name}-tls" in secrets, (name, secrets)
        if name == "switchyard-gateway":
            assert env.get("GATEWAY_TLS_CERT") == "/etc/switchyard/edge/tls.crt", env
            assert "edge-cert" in secrets, secrets
            assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS", c["readinessProbe"]
        else:
            # The kubelet speaks plain text: probes go to the plain-text metrics listener.
            assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}, c["readinessProbe"]
            assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, c["livenessProbe"]
    # Without a metrics port, probes under mTLS fall back to a TCP connect on the gRPC port.
    docs = render({**values, "agentDefaults": {"metricsPort": 0}})
    (echo,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "switchyard-echo"]
    c = echo["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["tcpSocket"] == {"port": 50051}, c["readinessProbe"]
    assert "ECHO_METRICS_LISTEN" not in json.dumps(c["env"]), c["env"]
    # Off by default: no Certificate, no TLS environment.
    plain = render({})
    assert not [d for d in plain if d["kind"] == "Certificate"]
    assert "SWITCHYARD_TLS_CA" not in json.dumps(plain)
    print("ok mTLS from Secrets, cert-manager Certificates with SPIFFE IDs, HTTPS edge, probes on the metrics port")


def leaf_keys(tree, prefix=""):
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            yield from leaf_keys(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"


def prefixes(key):
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def run_invalid():
    for name, (values, expected) in INVALID.items():
        try:
            render(values)
        except helm.HelmError as e:
            assert expected in str(e), f"{name}: expected {expected!r} in:\n{e}"
            print(f"ok {name}: {str(e).splitlines()[-1].strip()}")
            continue
        raise AssertionError(f"{name}: {values} rendered without an error")
    print(f"chart invalid values: {len(INVALID)} passed")


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else ""
    if what == "sets":
        run_sets()
    elif what == "invalid":
        run_invalid()
    elif what == "render":
        print(json.dumps(render({})))
    else:
        sys.exit("usage: chart_test.py sets|invalid|render")


if __name__ == "__main__":
    main()
