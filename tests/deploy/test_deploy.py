"""deploy/: the systemd unit (systemd-analyze verify and security), the compose stack
(docker-compose config -q), the Dockerfile and the Kubernetes manifests, including
that the generated PrometheusRule/ConfigMaps match their sources."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adlmon.config import load_config
from tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "adlmon.service"
INSTALLED_BINARY = "/opt/adlmon/.venv/bin/adlmon"
K8S = DEPLOY / "k8s"


def run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, timeout=60, **kw)


def unit_directives() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture
def testable_unit(tmp_path) -> Path:
    """The unit with ExecStart pointing at a binary that exists here: `verify` checks
    that the executable exists, and /opt/adlmon is where the unit expects an install.
    Our own venv's `adlmon` script (or, failing that, this Python) stands in."""
    stand_in = Path(sys.executable).with_name("adlmon")
    if not stand_in.exists():
        stand_in = Path(sys.executable)
    unit = tmp_path / "adlmon.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(INSTALLED_BINARY, str(stand_in)))
    return unit


def systemd_analyze() -> str:
    return require_tool("systemd-analyze", package="systemd")


def test_systemd_analyze_verify_accepts_the_unit(testable_unit):
    p = run(systemd_analyze(), "verify", str(testable_unit))
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert p.stderr.decode().strip() == "", p.stderr.decode()


def test_unit_exposure_score_is_ok(testable_unit):
    p = run(systemd_analyze(), "security", "--offline=true", str(testable_unit))
    if p.returncode != 0 and b"offline" in p.stderr:
        pytest.skip("this systemd-analyze has no --offline")
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", p.stdout.decode())
    assert m, p.stdout.decode()[-1000:]
    assert float(m.group(1)) <= 2.0  # "OK" band; the minimal §2.5 set scores 8.3


def test_unit_is_notify_with_watchdog_and_hardening():
    d = unit_directives()
    assert d["Type"] == ["notify"] and d["NotifyAccess"] == ["main"]
    assert int(d["WatchdogSec"][0]) > 0
    assert d["Restart"] == ["on-failure"] and d["KillSignal"] == ["SIGTERM"]
    assert d["TimeoutStopSec"] == ["30"]
    assert d["ExecStart"][0].startswith(INSTALLED_BINARY + " run --config /etc/adlmon/config.toml")
    for key, value in {"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
                       "ProtectHome": "yes", "PrivateTmp": "yes", "StateDirectory": "adlmon",
                       "ConfigurationDirectory": "adlmon", "UMask": "0077",
                       "CapabilityBoundingSet": ""}.items():
        assert d[key] == [value], key
    assert d["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert "@system-service" in d["SystemCallFilter"]


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


def test_docker_compose_config_is_valid(tmp_path):
    exe = require_tool("docker-compose", package="docker-compose")
    p = run(exe, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q", cwd=tmp_path)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def test_compose_runs_the_four_services_on_loopback_only():
    services = compose()["services"]
    assert set(services) == {"adlmon", "prometheus", "alertmanager", "grafana"}
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
    assert services["adlmon"]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}


def test_compose_bind_mounts_and_dockerfile_sources_exist():
    for name, svc in compose()["services"].items():
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (DEPLOY / src).exists(), (name, src)
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            *sources, _dest = line.split()[1:]
            for src in sources:
                assert (ROOT / src).exists(), src
    assert re.search(r"^USER 10001$", dockerfile, re.M)  # not root
    assert "EXPOSE 9817" in dockerfile


def test_container_config_is_valid_and_listens_inside_the_container():
    cfg = load_config(DEPLOY / "config" / "adlmon.toml")
    assert cfg.server.listen == "0.0.0.0:9817"
    assert cfg.wavelog.path.startswith("/var/lib/adlmon/")


def generator():
    spec = importlib.util.spec_from_file_location("adlmon_k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_k8s_files_are_up_to_date():
    stale = [str(path.relative_to(ROOT)) for path, text in generator().render().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    assert not stale, f"run `python deploy/k8s/generate.py`: {stale} out of date"


def k8s_docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text(encoding="utf-8")) if d]


def test_prometheus_rule_carries_exactly_the_promtool_tested_groups():
    [rule] = k8s_docs("generated/prometheusrule.yaml")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    source = yaml.safe_load((DEPLOY / "prometheus/rules/adlmon.rules.yml").read_text())
    assert rule["spec"]["groups"] == source["groups"]


def test_dashboard_config_maps_hold_the_dashboards_for_the_sidecar():
    maps = k8s_docs("generated/dashboards.yaml")
    got = {}
    for cm in maps:
        assert cm["kind"] == "ConfigMap"
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        (fname, body), = cm["data"].items()
        got[fname] = json.loads(body)
    for path in sorted((ROOT / "grafana" / "dashboards").glob("*.json")):
        assert got[path.name] == json.loads(path.read_text(encoding="utf-8"))


def test_config_map_holds_the_container_config():
    [cm] = k8s_docs("generated/configmap-config.yaml")
    assert cm["data"]["config.toml"] == (DEPLOY / "config" / "adlmon.toml").read_text()


def test_deployment_service_and_service_monitor_fit_together():
    [dep] = k8s_docs("deployment.yaml")
    [svc] = k8s_docs("service.yaml")
    [mon] = k8s_docs("servicemonitor.yaml")
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]
    assert pod["metadata"]["labels"].items() >= spec["selector"]["matchLabels"].items()
    [c] = pod["spec"]["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    [port] = c["ports"]
    assert port["containerPort"] == 9817
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert pod["spec"]["volumes"][0]["configMap"]["name"] == "adlmon-config"
    assert mounts["/etc/adlmon"] == "config"
    assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    assert mon["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert mon["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert mon["metadata"]["name"] == "adlmon"  # job="adlmon", which AdlmonDown matches


def test_kustomization_lists_every_manifest():
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    for res in kust["resources"]:
        assert (K8S / res).exists(), res
    manifests = {str(p.relative_to(K8S)) for p in K8S.rglob("*.yaml")} - {"kustomization.yaml"}
    assert manifests == set(kust["resources"])


def test_one_image_tag_everywhere_and_it_is_the_package_version():
    from adlmon import __version__
    tag = f"adlmon:{__version__}"
    refs = {}
    for path in [DEPLOY / "docker-compose.yml", K8S / "deployment.yaml", DEPLOY / "Dockerfile",
                 DEPLOY / "README.md"]:
        refs[path.name] = set(re.findall(r"(?<![\w/.-])adlmon:[\w.-]+", path.read_text()))
    assert compose()["services"]["adlmon"]["image"] == tag
    for name, found in refs.items():
        assert found == {tag}, (name, found)


def test_alertmanager_receivers_never_point_at_the_alertmanager_container_itself():
    doc = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text(encoding="utf-8"))
    for receiver in doc["receivers"]:
        for key, configs in receiver.items():
            for c in configs if isinstance(configs, list) else ():
                url = str(c.get("url", ""))
                assert not re.match(r"https?://(127\.0\.0\.1|localhost)[:/]", url), \
                    (receiver["name"], url)
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "## Alert notifications" in readme and "notify nobody" in readme


def test_deploy_readme_walks_through_each_deployment_path():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for heading in ("## 1. systemd", "## 2. docker-compose", "## 3. Kubernetes",
                    "## Runbook links"):
        assert heading in readme, heading
    for command in ("systemctl enable --now adlmon", "docker-compose -f deploy/docker-compose.yml up",
                    "kubectl apply -k deploy/k8s", "adlmon check-config", "adlmon run --demo"):
        assert command in readme, command
    for rel in re.findall(r"`(deploy/[\w./-]+)`", readme):
        assert (ROOT / rel).exists(), rel
