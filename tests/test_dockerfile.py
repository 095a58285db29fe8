"""The Dockerfile's promises, checked statically: no image can be built in this workplace.

A slim Python base of the version pyproject's requires-python starts at, the package installed with
pip and nothing else downloaded, a numeric non-root USER (the UID of the k8s/ pods), `netwatch` as
the exec-form ENTRYPOINT, no secrets, and k8s/ naming the image the Dockerfile says to build.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import yaml
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
K8S = ROOT / "k8s"
_BASE_IMAGE = re.compile(r"^python:(?P<version>3\.\d+)-slim(-[a-z]+)?$")
_BUILD = re.compile(r"^#\s+docker build -t (?P<image>\S+):(?P<tag>\S+) \.$", re.MULTILINE)
_SECRETISH = [
    re.compile(r"(?i)(token|passw|secret|api_?key|credential)"),
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # credentials inside a URL
    re.compile(r"\b[A-Za-z0-9+/_=-]{32,}\b"),  # long opaque strings
]


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, comments dropped and continued lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def arguments(keyword: str) -> list[str]:
    return [args for name, args in instructions() if name == keyword]


def lowest_python(specifier: str) -> str:
    """The lowest 3.x minor version that `specifier` allows."""
    allowed = SpecifierSet(specifier)
    return next(f"3.{minor}" for minor in range(6, 40) if allowed.contains(f"3.{minor}"))


def test_the_image_is_one_stage_on_a_slim_python_of_requires_python() -> None:
    [base] = arguments("FROM")
    match = _BASE_IMAGE.match(base)

    assert match is not None, f"FROM {base}: expected python:3.N-slim[-debian release]"
    assert match["version"] == lowest_python(PYPROJECT["project"]["requires-python"]) == "3.11"


def test_it_runs_as_a_numeric_non_root_user_set_after_every_build_step() -> None:
    steps = instructions()
    users = [index for index, (name, _) in enumerate(steps) if name == "USER"]
    assert users, "no USER: the image would run as root"
    last = users[-1]
    user = steps[last][1]

    # Numeric and non-zero, so the kubelet can check runAsNonRoot against the image.
    assert re.fullmatch(r"[1-9]\d*(:[1-9]\d*)?", user), f"USER {user}"
    assert all(name not in ("RUN", "COPY", "ADD") for name, _ in steps[last:])
    assert int(user.split(":")[0]) == non_root_uid_of_the_pods()


def non_root_uid_of_the_pods() -> int:
    uids = {doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
            for doc in k8s_documents() if doc["kind"] == "CronJob"}
    uids |= {doc["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
             for doc in k8s_documents() if doc["kind"] == "Job"}
    # Every pod, ping-sweep's too (datagram ICMP), runs as the image's user.
    [uid] = uids
    return int(uid)


def test_the_entry_point_is_netwatch_in_exec_form() -> None:
    [entrypoint] = arguments("ENTRYPOINT")

    # Exec form, so netwatch is PID 1 and gets SIGTERM itself; shell form would put /bin/sh there.
    assert json.loads(entrypoint) == ["netwatch"]
    assert "netwatch" in PYPROJECT["project"]["scripts"]


def test_the_package_is_installed_with_pip_and_nothing_else_is_downloaded() -> None:
    runs = arguments("RUN")

    assert arguments("ADD") == [], "ADD can fetch URLs and unpack archives: COPY only"
    assert any(re.search(r"\bpip install \.(\s|$)", run) for run in runs)
    for run in runs:
        words = shlex.split(run)
        assert not {"curl", "wget", "apt-get", "apt", "apk", "git"} & set(words), run
        assert "://" not in run, run


def test_only_the_package_sources_go_into_the_image() -> None:
    copied = [shlex.split(args)[:-1] for args in arguments("COPY")]
    ignored = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
               if line.strip() and not line.startswith("#")]

    assert sorted(source for sources in copied for source in sources) == ["README.md", "netwatch", "pyproject.toml"]
    assert ignored[0] == "*", ".dockerignore must leave out everything it does not let in"
    assert {line.removeprefix("!").rstrip("/") for line in ignored if line.startswith("!")} == {
        "README.md", "netwatch", "pyproject.toml"}


def test_no_secret_is_baked_into_the_image() -> None:
    for name, args in instructions():
        if name in ("ENV", "ARG", "LABEL"):
            for word in shlex.split(args):
                key = word.partition("=")[0]
                assert not _SECRETISH[0].search(key), f"{name} {key}: secrets come from the environment at run time"
        for pattern in _SECRETISH[1:]:
            assert not pattern.search(args), f"{name} {args}"
    assert arguments("ARG") == [], "a build argument ends up in the image history"


def k8s_documents() -> list[dict[str, object]]:
    """Every object of the base and the overlays (the components' patches are partial objects)."""
    return [doc for path in sorted(K8S.rglob("*.yaml")) if "components" not in path.relative_to(K8S).parts
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(doc, dict) and "kind" in doc]


def test_k8s_names_the_image_the_dockerfile_builds() -> None:
    build = _BUILD.search(DOCKERFILE.read_text(encoding="utf-8"))
    assert build is not None, "the Dockerfile's header shows no `docker build -t IMAGE:TAG .`"
    image, tag = build["image"], build["tag"]
    containers = [container for doc in k8s_documents() if doc["kind"] in ("CronJob", "Job")
                  for container in pod_spec(doc)["containers"]]
    overlays = [doc for doc in k8s_documents() if doc["kind"] == "Kustomization" and "images" in doc]

    assert tag == PYPROJECT["project"]["version"]
    assert {container["image"] for container in containers} == {f"{image}:{tag}"}
    assert all(container["command"] == ["netwatch"] for container in containers)
    assert overlays, "no overlay sets the image"
    for overlay in overlays:
        assert overlay["images"] == [{"name": image, "newName": image, "newTag": tag}]
    assert f"docker build -t {image}:{tag} ." in (ROOT / "README.md").read_text(encoding="utf-8")


def pod_spec(doc: dict[str, object]) -> dict[str, list[dict[str, object]]]:
    spec: dict[str, object] = doc["spec"]  # type: ignore[assignment]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]  # type: ignore[index]
    return spec["template"]["spec"]  # type: ignore[index,return-value]
