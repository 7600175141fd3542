"""Structural checks on one render of the Helm chart (see chart_test.py).

What a cluster operator relies on: every enabled agent has its workload, a ClusterIP and a
headless Service and native gRPC probes on the port named `grpc`; every NetworkPolicy selector
matches labels real pods carry; the gateway's registry names exactly the enabled agents by
their headless DNS names; pods are hardened; tracing and autoscaling are wired as configured.
"""

import re

DRAIN_SECONDS = 30


def by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def subset(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_render(name, docs, values, agents, release, namespace):
    where = f"[{name}]"
    workloads = {**by_kind(docs, "Deployment"), **by_kind(docs, "StatefulSet")}
    services = by_kind(docs, "Service")
    pod_labels = [w["spec"]["template"]["metadata"]["labels"] for w in workloads.values()]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")

    for agent in agents:
        full = f"{release}-{agent}"
        assert full in workloads, f"{where} no workload for agent {agent}"
        pod = workloads[full]["spec"]["template"]
        (c,) = pod["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert set(ports) == {"grpc", "metrics"}, f"{where} {agent} ports {ports}"
        assert ports["grpc"] != ports["metrics"], f"{where} {agent} ports {ports}"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"]["port"] == ports["grpc"], f"{where} {agent} {probe} {c[probe]}"
        for svc_name, headless in ((full, False), (f"{full}-headless", True)):
            svc = services.get(svc_name)
            assert svc, f"{where} no Service {svc_name}"
            assert (svc["spec"].get("clusterIP") == "None") == headless, f"{where} {svc_name} clusterIP"
            assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["grpc"], f"{where} {svc_name} ports"
            assert subset(svc["spec"]["selector"], pod["metadata"]["labels"]), f"{where} {svc_name} selector"
        upper = agent.upper().replace("-", "_")
        env = env_of(c)
        assert env[f"{upper}_LISTEN"]["value"] == f"0.0.0.0:{ports['grpc']}", f"{where} {agent} listen"
        assert env[f"{upper}_METRICS_LISTEN"]["value"] == f"0.0.0.0:{ports['metrics']}", f"{where} {agent} metrics"
        annotations = pod["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics"]), f"{where} {agent} {annotations}"
        store = {**values.get("agentDefaults", {}).get("store", {}), **values.get("agents", {}).get(agent, {}).get("store", {})}
        if store.get("type") == "postgres":
            # The DSN only from the Secret, never in the manifest; no SQLite file.
            ref = env[f"{upper}_STORE"]["valueFrom"]["secretKeyRef"]
            assert ref == {"name": store["existingSecret"], "key": store.get("secretKey", "dsn")}, f"{where} {agent} {ref}"
            assert f"{upper}_DB" not in env, f"{where} {agent} has a SQLite path with postgres"
        else:
            assert f"{upper}_STORE" not in env, f"{where} {agent} store env without postgres"
        hpa = hpas.get(full)
        assert ("replicas" in workloads[full]["spec"]) == (hpa is None), f"{where} {agent} replicas with HPA"
        if hpa:
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["name"] == full
    extra = {n for n in workloads if n not in {f"{release}-{a}" for a in agents}}
    assert extra <= {f"{release}-gateway", f"{release}-jaeger"}, f"{where} unexpected workloads {extra}"

    # The gateway: HTTP probes, a registry of exactly the enabled agents by headless DNS name.
    gw = workloads[f"{release}-gateway"]
    (gc,) = gw["spec"]["template"]["spec"]["containers"]
    assert gc["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert gc["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "checksum/config" in gw["spec"]["template"]["metadata"]["annotations"]
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert gc["envFrom"] == [{"configMapRef": {"name": cm["metadata"]["name"]}}]
    registry = dict(e.split("=", 1) for e in cm["data"]["SWITCHYARD_AGENTS"].split(";"))
    assert sorted(registry) == sorted(agents), f"{where} registry {registry}"
    for agent, endpoint in registry.items():
        m = re.fullmatch(r"dns:///([a-z0-9.-]+):(\d+)", endpoint)
        assert m, f"{where} {agent} endpoint {endpoint}"
        host, port = m.groups()
        assert host == f"{release}-{agent}-headless.{namespace}.svc.cluster.local", f"{where} {host}"
        svc = services[host.split(".")[0]]
        assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["ports"][0]["port"] == int(port)

    # NetworkPolicy: selectors match pods of this render; callers are the gateway + allowFrom.
    policies = by_kind(docs, "NetworkPolicy")
    np_on = values.get("networkPolicy", {}).get("enabled", True)
    assert bool(policies) == np_on, f"{where} NetworkPolicies {list(policies)}"
    for pname, p in policies.items():
        sel = p["spec"]["podSelector"]["matchLabels"]
        assert any(subset(sel, labels) for labels in pod_labels), f"{where} {pname} selects no pod"
        for rule in p["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    continue  # another namespace's pods (the metrics scraper)
                peer_sel = peer["podSelector"]["matchLabels"]
                assert any(subset(peer_sel, labels) for labels in pod_labels), f"{where} {pname} peer {peer_sel}"
    if np_on:
        # Scrapers (peers in another namespace) reach an agent's metrics port, never its gRPC port.
        for pname, p in policies.items():
            if pname == f"{release}-gateway":
                continue
            for rule in p["spec"]["ingress"]:
                ports = [q["port"] for q in rule["ports"]]
                scrapers = any("namespaceSelector" in peer for peer in rule["from"])
                assert ports == (["metrics"] if scrapers else ["grpc"]), f"{where} {pname} {rule}"
        callers = {}
        for pname, p in policies.items():
            comp = p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
            callers[comp] = sorted(
                peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                for rule in p["spec"]["ingress"]
                for peer in rule.get("from", [])
                if "namespaceSelector" not in peer
            )
        for agent in agents:
            expected = ["gateway", "research"] if agent in ("textstats", "summarize", "keywords", "translate") else ["gateway"]
            assert callers[agent] == expected, f"{where} {agent} callers {callers[agent]}"

    # Hardened pods; a grace period above the drain timeout.
    for wname, w in workloads.items():
        spec = w["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False, f"{where} {wname} token"
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        tmp = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["capabilities"]["drop"] == ["ALL"], wname
            assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in c["volumeMounts"]), wname
        if wname != f"{release}-jaeger":
            assert spec["terminationGracePeriodSeconds"] > DRAIN_SECONDS, wname

    # Tracing: every Switchyard container exports, named after its agent, with pod attributes.
    tracing = values.get("tracing", {}).get("enabled") or values.get("jaeger", {}).get("enabled")
    for wname, w in workloads.items():
        if wname == f"{release}-jaeger":
            continue
        (c,) = w["spec"]["template"]["spec"]["containers"]
        env = env_of(c)
        assert ("OTEL_EXPORTER_OTLP_ENDPOINT" in env) == bool(tracing), f"{where} {wname} OTLP"
        if tracing:
            assert env["OTEL_SERVICE_NAME"]["value"] == wname.removeprefix(f"{release}-")
            assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
            assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            assert "k8s.pod.name=$(POD_NAME)" in env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
            if values.get("jaeger", {}).get("enabled"):
                jaeger = f"http://{release}-jaeger.{namespace}.svc.cluster.local:4317"
                assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == jaeger
                ports = {p["port"] for p in services[f"{release}-jaeger"]["spec"]["ports"]}
                assert ports == {4317, 4318, 16686}, ports
