"""The cluster manifests under cluster/ parse and say what cluster/README.md promises.

The launcher config is checked against the JSON schema Ray ships with its autoscaler; the KubeRay
manifests for the fields raynas depends on: autoscaling bounds, GPUs, a shared ReadWriteMany volume on
every node, the dashboard kept inside the cluster, a RayJob whose command is a valid raynas search, and the
hardening: token authentication from a Secret everywhere, a NetworkPolicy that admits only the cluster,
the submitter and the operator, and restricted pods (non-root, no capabilities, no privilege escalation,
RuntimeDefault seccomp, no service-account token but the autoscaler's).
"""

from __future__ import annotations

import importlib.util
import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from raynas.config import load_config
from raynas.config.shipped import resolve_config, shipped_configs

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
KUBERAY = CLUSTER / "kuberay"
EXPOSED_SERVICE_TYPES = {"LoadBalancer", "NodePort"}


def load(path: Path) -> dict[str, Any]:
    """The single YAML document in PATH."""
    with open(path) as fh:
        return yaml.safe_load(fh)


def ray_schema() -> dict[str, Any]:
    """Ray's cluster-config JSON schema, read from the installed package without importing Ray."""
    spec = importlib.util.find_spec("ray")
    assert spec is not None and spec.submodule_search_locations
    path = Path(list(spec.submodule_search_locations)[0]) / "autoscaler" / "ray-schema.json"
    return json.loads(path.read_text())


def service_types(node: Any) -> list[str]:
    """Every Service type a manifest asks for: ``serviceType`` fields and the ``type`` of Service objects."""
    found = []
    if isinstance(node, dict):
        if node.get("kind") == "Service":
            found.append(node.get("spec", {}).get("type", "ClusterIP"))
        found += [v for k, v in node.items() if k == "serviceType"]
        for value in node.values():
            found += service_types(value)
    elif isinstance(node, list):
        for value in node:
            found += service_types(value)
    return found


def search_command(words: list[str]) -> tuple[str, list[str], dict[str, str]]:
    """Config path, --set overrides and other options of the ``raynas search`` in a command's words."""
    start = words.index("raynas")
    assert words[start + 1] == "search"
    config, rest = words[start + 2], words[start + 3:]
    overrides, options = [], {}
    for flag, value in zip(rest[::2], rest[1::2]):
        if flag == "--set":
            overrides.append(value)
        else:
            options[flag] = value
    return config, overrides, options


def test_launcher_config_matches_rays_schema() -> None:
    """cluster/aws.yaml is a valid Ray cluster-launcher config."""
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(load(CLUSTER / "aws.yaml"), ray_schema())


def test_launcher_config_autoscales_gpu_workers_and_keeps_dashboard_local() -> None:
    """GPU worker type with autoscaling bounds; raynas installed on every node; dashboard on localhost."""
    cfg = load(CLUSTER / "aws.yaml")
    types = cfg["available_node_types"]
    assert cfg["head_node_type"] in types
    workers = {name: t for name, t in types.items() if name != cfg["head_node_type"]}
    gpu = [t for t in workers.values() if t["resources"].get("GPU", 0) >= 1]
    assert gpu, "no worker type offers a GPU"
    for t in gpu:
        assert 0 <= t["min_workers"] <= t["max_workers"] <= cfg["max_workers"]
        assert t["max_workers"] >= 1
    assert types[cfg["head_node_type"]]["resources"].get("GPU", 0) == 0

    assert any("pip install" in c and "raynas" in c for c in cfg["setup_commands"])
    assert any("/shared" in c for c in cfg["setup_commands"])
    head_start = " ".join(cfg["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in head_start
    assert any("$RAY_HEAD_IP:6379" in c for c in cfg["worker_start_ray_commands"])
    mounted = set(cfg["file_mounts"].values())
    assert "./dist" in mounted  # the wheel: raynas and its search configs


def test_launcher_config_turns_ray_token_authentication_on() -> None:
    """Every node gets the token at Ray's default path, private, and starts Ray in token mode."""
    cfg = load(CLUSTER / "aws.yaml")
    assert cfg["file_mounts"]["~/.ray/auth_token"] == "./cluster/ray_auth_token"
    assert any("chmod 600 ~/.ray/auth_token" in c for c in cfg["setup_commands"])
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in cfg[key] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token" in c.split("ray start")[0] for c in starts), key
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "cluster/ray_auth_token" in ignored  # the token never goes into the repository


def test_raycluster_autoscales_gpu_group_and_exposes_nothing() -> None:
    """RayCluster: autoscaler on, GPU worker group with bounds, ClusterIP only, /shared on every pod."""
    rc = load(KUBERAY / "raycluster.yaml")
    assert (rc["apiVersion"], rc["kind"]) == ("ray.io/v1", "RayCluster")
    spec = rc["spec"]
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["headGroupSpec"].get("serviceType", "ClusterIP") == "ClusterIP"
    for manifest in sorted(KUBERAY.glob("*.yaml")):
        assert not EXPOSED_SERVICE_TYPES & set(service_types(load(manifest))), manifest.name

    claim = load(KUBERAY / "shared-pvc.yaml")
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]

    pods = [spec["headGroupSpec"]["template"]["spec"]]
    groups = spec["workerGroupSpecs"]
    gpu_groups = [g for g in groups
                  if int(g["template"]["spec"]["containers"][0]["resources"]["limits"].get("nvidia.com/gpu", 0)) >= 1]
    assert gpu_groups, "no worker group asks for a GPU"
    for g in gpu_groups:
        assert 0 <= g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        assert g["maxReplicas"] >= 1
    pods += [g["template"]["spec"] for g in groups]

    images = set()
    for pod in pods:
        claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]
                  if "persistentVolumeClaim" in v}
        container = pod["containers"][0]
        images.add(container["image"])
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert claims.get(mounts.get("/shared")) == claim["metadata"]["name"]
    assert len(images) == 1, "head and workers must run the same raynas image"


def test_rayjob_runs_a_valid_raynas_search_on_the_cluster(tmp_path: Path) -> None:
    """RayJob: targets the RayCluster, joins it with --address auto, writes to /shared, valid config."""
    job = load(KUBERAY / "rayjob.yaml")
    cluster_name = load(KUBERAY / "raycluster.yaml")["metadata"]["name"]
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == cluster_name

    words = shlex.split(job["spec"]["entrypoint"])
    config, overrides, options = search_command(words)
    assert options["--address"] == "auto"
    assert options["--out"].startswith("/shared/")
    # A config the wheel ships (the image installs it): its name, from any working folder.
    assert config in shipped_configs()
    dockerfile = (CLUSTER / "Dockerfile").read_text()
    assert "pip install --no-cache-dir /tmp/raynas-dist/raynas-*.whl" in dockerfile
    roots = [o.split("=", 1)[1] for o in overrides if o.startswith("data.root=")]
    assert roots and roots[0].startswith("/shared/")
    # The data folder exists on the cluster's volume only; validate the rest of the config against a stand-in.
    local = [o for o in overrides if not o.startswith("data.root=")] + [f"data.root={tmp_path}"]
    cfg = load_config(resolve_config(config), local)
    assert cfg.resources.gpus_per_trial >= 1


AUTH_SECRET = {"name": "raynas-ray-auth", "key": "auth_token"}
SA_TOKEN_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def ray_pod_specs() -> dict[str, dict[str, Any]]:
    """Every pod spec the manifests define, by role: the head, each worker group, the RayJob submitter."""
    spec = load(KUBERAY / "raycluster.yaml")["spec"]
    pods = {"head": spec["headGroupSpec"]["template"]["spec"]}
    pods.update({f"worker {g['groupName']}": g["template"]["spec"] for g in spec["workerGroupSpecs"]})
    pods["submitter"] = load(KUBERAY / "rayjob.yaml")["spec"]["submitterPodTemplate"]["spec"]
    return pods


def auth_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    """RAY_AUTH_MODE's value and RAY_AUTH_TOKEN's entry in a container's env list."""
    by_name = {e["name"]: e for e in env}
    return {"mode": by_name.get("RAY_AUTH_MODE", {}).get("value"), "token": by_name.get("RAY_AUTH_TOKEN", {})}


def test_every_ray_process_authenticates_with_the_token_from_the_secret() -> None:
    """Token auth on in every pod (and the autoscaler), the token only ever from the Secret, never inline."""
    spec = load(KUBERAY / "raycluster.yaml")["spec"]
    assert spec["authOptions"] == {"mode": "token", "secretName": AUTH_SECRET["name"]}  # the operator's calls
    envs = {role: pod["containers"][0].get("env", []) for role, pod in ray_pod_specs().items()}
    envs["autoscaler"] = spec["autoscalerOptions"].get("env", [])
    for role, env in envs.items():
        found = auth_env(env)
        assert found["mode"] == "token", role
        assert found["token"] == {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": AUTH_SECRET}}, role
    for manifest in sorted(KUBERAY.glob("*.yaml")):  # no Secret object with a token checked into the repo
        assert load(manifest)["kind"] != "Secret", manifest.name
    readme = (CLUSTER / "README.md").read_text()
    assert f"kubectl create secret generic {AUTH_SECRET['name']} --from-literal={AUTH_SECRET['key']}=" in readme


def restricted(context: dict[str, Any]) -> bool:
    """A container securityContext without privilege escalation, with every capability dropped."""
    capabilities = context.get("capabilities", {})
    return (context.get("allowPrivilegeEscalation") is False and "ALL" in capabilities.get("drop", [])
            and not capabilities.get("add") and not context.get("privileged"))


def test_every_pod_runs_restricted_without_an_api_token() -> None:
    """Non-root, no capabilities, no privilege escalation, RuntimeDefault seccomp, no service-account token."""
    for role, pod in ray_pod_specs().items():
        assert pod["automountServiceAccountToken"] is False, role
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0, role
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, role
        for container in pod["containers"] + pod.get("initContainers", []):
            assert restricted(container["securityContext"]), (role, container["name"])
            assert not any(m["mountPath"].startswith(SA_TOKEN_PATH) for m in container.get("volumeMounts", []))
    # The autoscaler (injected into the head pod) scales the worker group through the Kubernetes API: it
    # alone mounts a service-account token, projected by a volume of the head pod.
    spec = load(KUBERAY / "raycluster.yaml")["spec"]
    autoscaler = spec["autoscalerOptions"]
    assert restricted(autoscaler["securityContext"])
    mounts = {m["mountPath"]: m["name"] for m in autoscaler["volumeMounts"]}
    head_volumes = {v["name"]: v for v in spec["headGroupSpec"]["template"]["spec"]["volumes"]}
    projected = head_volumes[mounts[SA_TOKEN_PATH]]["projected"]["sources"]
    assert any("serviceAccountToken" in source for source in projected)


def test_network_policy_admits_only_the_cluster_the_submitter_and_the_operator() -> None:
    """Ingress to the cluster's pods: from its own pods, from the submitter and the operator to 8265 only."""
    policy = load(KUBERAY / "networkpolicy.yaml")
    cluster = load(KUBERAY / "raycluster.yaml")
    submitter = load(KUBERAY / "rayjob.yaml")["spec"]["submitterPodTemplate"]
    own = {"ray.io/cluster": cluster["metadata"]["name"]}  # the label KubeRay puts on every pod of the cluster
    assert (policy["apiVersion"], policy["kind"]) == ("networking.k8s.io/v1", "NetworkPolicy")
    assert policy["spec"]["podSelector"] == {"matchLabels": own}
    assert "Ingress" in policy["spec"]["policyTypes"]
    dashboard = {p["containerPort"] for p in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
                 ["ports"] if p["name"] == "dashboard"}
    assert dashboard == {8265}

    rules = policy["spec"]["ingress"]
    for rule in rules:
        # An empty or missing `from`, an ipBlock or a bare namespaceSelector would admit anyone.
        assert rule.get("from") and all("podSelector" in peer and "ipBlock" not in peer for peer in rule["from"])
    admitted = {}
    for rule in rules:
        ports = frozenset(p["port"] for p in rule.get("ports", [])) or "all"
        for peer in rule["from"]:
            admitted[tuple(sorted(peer["podSelector"]["matchLabels"].items()))] = ports
    assert admitted == {
        tuple(own.items()): "all",
        tuple(sorted(submitter["metadata"]["labels"].items())): frozenset(dashboard),
        (("app.kubernetes.io/name", "kuberay-operator"),): frozenset(dashboard),
    }
    images = {pod["containers"][0]["image"] for pod in ray_pod_specs().values()}
    assert len(images) == 1, "the submitter runs the cluster's image (same Ray, same raynas)"
