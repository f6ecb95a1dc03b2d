"""Deployment (issue 4): the systemd unit, install/upgrade/uninstall, preflight, check-arm.

The installer runs for real into a temporary root (DESTDIR) in dry-run mode: apt,
useradd, chown and live systemctl calls are only printed, pip is skipped
(SKIP_PIP=1), everything under the root is really written and checked here.
"""

from __future__ import annotations

import functools
import marshal
import os
import platform
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "maskwatch.service"
DEPLOY = REPO / "deploy"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
MAX_EXPOSURE = 2.0
# What `systemd-analyze security` may still mark ✗, each for a reason given in the
# README ("What the sandbox still allows"). A new ✗ fails the test on purpose.
ACCEPTED_EXPOSURES = {
    "RootDirectory=/RootImage=",        # runs on the host's read-only root, not an image
    "SupplementaryGroups=",             # video and gpio: how the device nodes are reached
    "PrivateDevices=",                  # hides /dev/video*; DevicePolicy=closed limits instead
    "DeviceAllow=",                     # the camera stack and the GPIO chip (+ rtc:r)
    "RestrictAddressFamilies=~AF_UNIX", # sd_notify and libcamera's IPC
    "ProcSubset=",                      # /proc/cpuinfo for XNNPACK's cpuinfo and gpiozero
    "PrivateUsers=",                    # unmapped video/gpio groups inside a user namespace
    "UMask=",                           # 0027: state files readable by the maskwatch group
}


@functools.cache
def lib_value(name: str) -> str:
    """A constant from deploy/lib.sh, as bash sees it: the installer's own paths."""
    return subprocess.run(["bash", "-c", f'. "$0"; printf %s "${name}"', DEPLOY / "lib.sh"],
                          capture_output=True, text=True, check=True).stdout


def unit_entries(path: Path = UNIT) -> dict[str, list[str]]:
    """'Section.Key' -> every value, in order (systemd keys may repeat)."""
    entries: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.setdefault(f"{section}.{key}", []).append(value)
    return entries


def system_root(root: Path) -> None:
    """Give a temp root the unit directory systemd-analyze needs (sysinit.target, ...)."""
    target = root / "usr/lib/systemd/system"
    if Path("/usr/lib/systemd/system/sysinit.target").exists():
        shutil.copytree("/usr/lib/systemd/system", target, symlinks=True, dirs_exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("sysinit", "basic", "shutdown", "multi-user"):
            (target / f"{name}.target").write_text(f"[Unit]\nDescription={name}\n")


def verify(root: Path) -> str:
    result = subprocess.run([ANALYZE, "verify", f"--root={root}", "maskwatch.service"],
                            capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).strip() + ("" if result.returncode == 0 else
                                                      f"\n(exit {result.returncode})")


def run_script(name: str, root: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "DESTDIR": str(root), "DRY_RUN": "1", "SKIP_PIP": "1",
                "SYSTEM_PYTHON": sys.executable, **env}
    result = subprocess.run(["bash", str(DEPLOY / name)], capture_output=True, text=True,
                            env=full_env, timeout=120)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- The unit file -------------------------------------------------------------------

@needs_analyze
def test_unit_verifies_clean_when_execstart_exists(tmp_path):
    root = tmp_path / "root"
    system_root(root)
    unit_dir = root / "etc/systemd/system"
    unit_dir.mkdir(parents=True)
    shutil.copy(UNIT, unit_dir)
    # Without the interpreter in the root, verify must complain: the check is live.
    assert "is not executable" in verify(root)
    python = root / lib_value("VENV_DIR").lstrip("/") / "bin/python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    assert verify(root) == ""


@needs_analyze
def test_unit_security_exposure_within_threshold():
    result = subprocess.run([ANALYZE, "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    out = result.stdout + result.stderr
    m = re.search(r"Overall exposure level for maskwatch\.service: (\d+\.\d+)", out)
    assert m, out
    assert float(m[1]) <= MAX_EXPOSURE, out
    flagged = {line.split()[1] for line in out.splitlines() if line.startswith("✗")}
    assert flagged <= ACCEPTED_EXPOSURES, f"newly exposed: {flagged - ACCEPTED_EXPOSURES}\n{out}"


def test_unit_has_what_the_issue_requires():
    e = unit_entries()
    one = {k: v[-1] for k, v in e.items()}
    venv, conf = lib_value("VENV_DIR"), lib_value("CONF_FILE")
    assert one["Service.ExecStart"] == f"{venv}/bin/python -m edge run --config {conf}"
    assert one["Service.Type"] == "notify"
    assert one["Service.NotifyAccess"] == "main"
    assert one["Service.WatchdogSec"] and one["Service.RestartSec"]
    assert one["Service.Restart"] == "on-failure"
    assert one["Unit.StartLimitBurst"] and one["Unit.StartLimitIntervalSec"]
    assert one["Service.User"] == lib_value("SERVICE_USER")
    assert one["Service.SupplementaryGroups"].split() == lib_value("SERVICE_GROUPS").split()
    assert one["Service.StateDirectory"] == Path(lib_value("STATE_DIR")).name
    assert one["Service.DevicePolicy"] == "closed"
    assert sorted(e["Service.DeviceAllow"]) == sorted(
        f"char-{name} rw" for name in ("video4linux", "media", "dma_heap", "gpiochip"))
    assert one["Service.RestrictAddressFamilies"] == "AF_UNIX"
    assert e["Service.SystemCallFilter"][0] == "@system-service"
    assert one["Service.UMask"] == "0027"
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert one[f"Service.{key}"] in ("yes", "strict"), key
    assert one["Service.ProtectSystem"] == "strict"
    assert one["Install.WantedBy"] == "multi-user.target"


# --- install / upgrade / uninstall into a temp root -------------------------------------

def test_install_into_temp_root(tmp_path):
    root = tmp_path / "root"
    result = run_script("install.sh", root)
    out = result.stdout
    app = root / lib_value("APP_DIR").lstrip("/")
    conf = root / lib_value("CONF_FILE").lstrip("/")
    state = root / lib_value("STATE_DIR").lstrip("/")
    unit = root / lib_value("UNIT_FILE").lstrip("/")

    # The code tree, read-only for the service, byte-compiled for the installed path.
    assert (app / "edge" / "config.py").is_file()
    assert (app / "edge" / "maskwatch.toml").is_file()
    assert mode(app) == 0o755 and mode(app / "edge" / "config.py") == 0o644
    pyc = next((app / "edge" / "__pycache__").glob("config.*.pyc"))
    code = marshal.loads(pyc.read_bytes()[16:])
    assert code.co_filename == lib_value("APP_DIR") + "/edge/config.py"
    for bundled in ("default", "blazeface", "yunet"):
        if (REPO / "models" / bundled).is_dir():
            assert (app / "models" / bundled).is_dir()
    if not (REPO / "models" / "default" / "card.json").is_file():
        assert "models/default is missing" in result.stderr  # said clearly, not silently
    # The venv on the system interpreter sees apt's packages and puts the code root on sys.path.
    venv = root / lib_value("VENV_DIR").lstrip("/")
    assert "include-system-site-packages = true" in (venv / "pyvenv.cfg").read_text()
    pth = list(venv.glob("lib/python3*/site-packages/maskwatch.pth"))
    assert len(pth) == 1 and pth[0].read_text().strip() == lib_value("APP_DIR")
    # Config: a copy of the shipped defaults, readable by the service's group only.
    assert conf.read_bytes() == (REPO / "edge" / "maskwatch.toml").read_bytes()
    assert mode(conf) == 0o640 and mode(conf.parent) == 0o750
    assert mode(state) == 0o750
    assert unit.read_bytes() == UNIT.read_bytes() and mode(unit) == 0o644
    # What only the Pi can do is announced, with the ownership it would set.
    for line in ("would run: apt-get install -y --no-install-recommends python3-venv python3-picamera2",
                 "would run: useradd --system --user-group",
                 "would run: usermod --append --groups video,gpio maskwatch",
                 f"would run: chown root:maskwatch {conf}",
                 f"would run: chown maskwatch:maskwatch {state}",
                 "would run: systemctl enable maskwatch.service",
                 "would run: systemctl restart maskwatch.service",
                 "journalctl -u maskwatch -f"):
        assert line in out, line
    if shutil.which("systemctl"):  # enabling is a symlink, made inside the root
        assert (unit.parent / "multi-user.target.wants" / "maskwatch.service").is_symlink()


@needs_analyze
def test_installed_tree_satisfies_the_unit(tmp_path):
    """The unit's ExecStart exists in what install.sh lays down."""
    root = tmp_path / "root"
    run_script("install.sh", root)
    system_root(root)
    # The venv's python is a symlink to the system interpreter, which systemd looks
    # up inside the root (as on the Pi's own filesystem): follow it there, stub the end.
    path = root / lib_value("VENV_DIR").lstrip("/") / "bin" / "python"
    while path.is_symlink():
        link = os.readlink(path)
        path = root / link.lstrip("/") if link.startswith("/") else path.parent / link
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    assert verify(root) == ""


def test_upgrade_keeps_config_and_state_and_replaces_code(tmp_path):
    root = tmp_path / "root"
    run_script("install.sh", root)
    conf = root / lib_value("CONF_FILE").lstrip("/")
    state = root / lib_value("STATE_DIR").lstrip("/")
    app = root / lib_value("APP_DIR").lstrip("/")
    conf.write_text("[model]\nthreads = 4\n")
    (state / "snapshots").mkdir()
    (state / "snapshots" / "v1.jpg").write_bytes(b"jpeg")
    (app / "edge" / "removed_upstream.py").write_text("x = 1\n")

    out = run_script("install.sh", root).stdout

    assert conf.read_text() == "[model]\nthreads = 4\n"
    assert "kept your /etc/maskwatch/config.toml" in out
    assert (state / "snapshots" / "v1.jpg").read_bytes() == b"jpeg"
    assert not (app / "edge" / "removed_upstream.py").exists()
    assert "keeping the venv" in out


def test_memory_deny_write_execute_relaxed_only_when_the_check_fails(tmp_path):
    root = tmp_path / "root"
    dropin = root / lib_value("DROPIN_WX").lstrip("/")
    result = run_script("install.sh", root, MDWE_CHECK="false")
    assert "MemoryDenyWriteExecute=no" in dropin.read_text()
    assert "needs writable+executable memory" in result.stderr
    if ANALYZE:  # the drop-in really turns it off for systemd
        out = subprocess.run([ANALYZE, "security", "--offline=true", f"--root={root}",
                              "maskwatch.service"], capture_output=True, text=True).stdout
        assert re.search(r"^✗ MemoryDenyWriteExecute=", out, re.M), out
    run_script("install.sh", root, MDWE_CHECK="true")
    assert not dropin.exists() and not dropin.parent.exists()


def test_uninstall_keeps_config_and_state(tmp_path):
    root = tmp_path / "root"
    run_script("install.sh", root)
    state = root / lib_value("STATE_DIR").lstrip("/")
    (state / "tracks.json").write_text("{}")
    dropin = root / (lib_value("UNIT_FILE") + ".d").lstrip("/") / "override.conf"
    dropin.parent.mkdir()
    dropin.write_text("[Service]\nRestartSec=30s\n")

    out = run_script("uninstall.sh", root).stdout

    assert not (root / lib_value("APP_DIR").lstrip("/")).exists()
    unit = root / lib_value("UNIT_FILE").lstrip("/")
    assert not unit.exists()
    assert not (unit.parent / "multi-user.target.wants" / "maskwatch.service").exists()
    assert (root / lib_value("CONF_FILE").lstrip("/")).is_file()
    assert (state / "tracks.json").is_file()
    assert dropin.is_file()  # your `systemctl edit` is configuration too
    assert "would run: systemctl disable --now maskwatch.service" in out
    assert "userdel" not in out
    # Installing again picks the kept config up.
    assert "kept your" in run_script("install.sh", root).stdout


def test_uninstall_purge_removes_everything(tmp_path):
    root = tmp_path / "root"
    run_script("install.sh", root)
    out = run_script("uninstall.sh", root, PURGE="1").stdout
    for name in ("APP_DIR", "CONF_DIR", "STATE_DIR", "UNIT_FILE"):
        assert not (root / lib_value(name).lstrip("/")).exists(), name
    assert "would run: userdel maskwatch" in out


# --- The config the installer ships passes the edge's own validation -------------------

def test_shipped_config_passes_edge_validation(tmp_path):
    root = tmp_path / "root"
    run_script("install.sh", root)
    conf = root / lib_value("CONF_FILE").lstrip("/")
    sys.path.insert(0, str(REPO))
    try:
        from edge.config import ConfigError, load_config
    finally:
        sys.path.remove(str(REPO))
    load_config(conf)  # raises ConfigError naming the key if the shipped file is wrong
    bad = tmp_path / "bad.toml"
    bad.write_text(conf.read_text().replace("threads = 2", 'threads = "two"'))
    with pytest.raises(ConfigError, match="model.threads"):
        load_config(bad)


def test_shipped_config_passes_check_config_cli(tmp_path):
    root = tmp_path / "root"
    run_script("install.sh", root)
    conf = root / lib_value("CONF_FILE").lstrip("/")
    cli = [sys.executable, "-m", "edge", "check-config"]
    ok = subprocess.run(cli + [str(conf)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[tracker]\nk = 9\nn = 5\n")
    refused = subprocess.run(cli + [str(bad)], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stdout + refused.stderr


# --- Preflight, check-arm, MemoryDenyWriteExecute ---------------------------------------

def test_preflight_explains_each_check():
    result = subprocess.run(["bash", str(DEPLOY / "preflight.sh")], capture_output=True,
                            text=True, timeout=60,
                            env={**os.environ, "SYSTEM_PYTHON": sys.executable})
    out = result.stdout
    for check in ("os", "python", "arch", "camera", "gpio", "disk"):
        assert re.search(rf"^\s+(ok|warn|FAIL)\s+{check}\s+\S", out, re.M), check
    if platform.machine() != "aarch64":
        assert result.returncode == 1 and re.search(r"^\s+FAIL\s+arch\s+\S", out, re.M)


@pytest.mark.skipif(platform.machine() == "aarch64" or os.geteuid() != 0,
                    reason="needs a non-Pi machine where the live preflight must fail")
def test_live_install_stops_at_a_failed_preflight():
    env = {k: v for k, v in os.environ.items() if k not in ("DESTDIR", "DRY_RUN", "FORCE")}
    env["SYSTEM_PYTHON"] = sys.executable
    result = subprocess.run(["bash", str(DEPLOY / "install.sh")], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert "preflight found a blocking problem" in result.stderr
    assert "apt-get" not in result.stdout  # stopped before touching the system


def _venv_whose_check_config_exits(root: Path, code: int) -> None:
    """A venv at the install's place whose pip installs nothing and whose ``python -m edge
    check-config`` exits ``code``: 2 as for a bad config, 1 as the Bookworm OpenCV crash
    did. Everything else runs on this Python; sysconfig answers inside the fake venv."""
    venv = root / lib_value("VENV_DIR").lstrip("/")
    site = venv / "lib" / "site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    (venv / "pyvenv.cfg").write_text("version = %d.%d.0\n" % sys.version_info[:2])
    python = venv / "bin" / "python"
    python.write_text(f"""#!/bin/sh
case "$*" in
  *"-m pip install"*) exit 0 ;;
  *"-m edge check-config"*) echo "AttributeError: the fake check-config" >&2; exit {code} ;;
  *sysconfig*) echo "{site}"; exit 0 ;;
esac
exec "{sys.executable}" "$@"
""")
    python.chmod(0o755)


@pytest.mark.parametrize("code, says", [
    (2, "doesn't pass this version's check (each line above names a key); fix it"),
    (1, "check-config crashed (exit 1, above)")])
def test_a_first_install_that_stops_at_the_config_check_says_what_it_left(tmp_path, code, says):
    root = tmp_path / "root"
    _venv_whose_check_config_exits(root, code)
    env = {**os.environ, "DESTDIR": str(root), "DRY_RUN": "1", "SKIP_PIP": "0",
           "SYSTEM_PYTHON": sys.executable, "MDWE_CHECK": "true"}
    result = subprocess.run(["bash", str(DEPLOY / "install.sh")], capture_output=True,
                            text=True, env=env, timeout=120)
    assert result.returncode == 1
    err = " ".join(result.stderr.split())
    assert says in err
    assert "this first install stopped before the code and the unit: nothing runs yet" in err
    assert f"it made: the maskwatch user, the venv {lib_value('VENV_DIR')}" in err
    assert "uninstall.sh" in err
    # It stopped before the code and the unit, as it says.
    assert not (root / lib_value("APP_DIR").lstrip("/") / "edge").exists()
    assert not (root / lib_value("UNIT_FILE").lstrip("/")).exists()


def test_check_arm_skips_with_a_reason_when_offline():
    env = {**os.environ, "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(DEPLOY / "check-arm.sh")], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0
    assert "check-arm: SKIPPED - the package index http://127.0.0.1:9/simple is unreachable" \
        in result.stdout


def test_runtime_stack_survives_memory_deny_write_execute():
    """The unit sets MemoryDenyWriteExecute=yes: the libraries must not need W+X memory."""
    model = next(iter(sorted((REPO / "models" / "default").glob("*.tflite"))), None) \
        or REPO / "models" / "blazeface" / "face_detection_short_range.tflite"
    if not model.is_file():
        pytest.skip("no bundled .tflite to run")
    result = subprocess.run([sys.executable, str(DEPLOY / "mdwe_check.py"), str(model)],
                            capture_output=True, text=True, timeout=60)
    if result.returncode == 2:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    ran" in result.stdout
    assert "ok    ran yunet_n_640_640.onnx (OpenCV DNN)" in result.stdout


# --- Network access for [sinks.mqtt] and [web] -------------------------------------------

def exposure(root: Path) -> float:
    out = subprocess.run([ANALYZE, "security", "--offline=true", f"--root={root}",
                          "maskwatch.service"], capture_output=True, text=True).stdout
    return float(re.search(r"Overall exposure level for maskwatch\.service: (\d+\.\d+)",
                           out).group(1))


def test_the_network_dropin_follows_the_config(tmp_path):
    root = tmp_path / "root"
    dropin = root / lib_value("DROPIN_NET").lstrip("/")
    run_script("install.sh", root)
    assert not dropin.exists()                     # no MQTT, no page: still no network
    conf = root / lib_value("CONF_FILE").lstrip("/")
    secret = conf.parent / "mqtt-password"
    secret.write_text("pw\n")
    secret.chmod(0o600)
    token = conf.parent / "web-token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    conf.write_text(f'[sinks.mqtt]\nenabled = true\nhost = "192.168.1.5"\nusername = "mw"\n'
                    f'password_file = "{secret}"\n[web]\nenabled = true\nbind = "0.0.0.0"\n'
                    f'port = 8081\ntoken_file = "{token}"\n')
    result = run_script("install.sh", root)
    text = dropin.read_text()
    assert "PrivateNetwork=no" in text and "IPAddressDeny=any" in text
    allow = next(line for line in text.splitlines() if line.startswith("IPAddressAllow="))
    assert allow.split("=", 1)[1].split() == ["192.168.1.5", "localhost", "10.0.0.0/8",
                                              "172.16.0.0/12", "192.168.0.0/16",
                                              "169.254.0.0/16", "fc00::/7", "fe80::/10"]
    assert "SocketBindDeny=any\nSocketBindAllow=tcp:8081\n" in text
    assert "network for [sinks.mqtt]/[web]" in result.stdout
    if ANALYZE:
        assert exposure(root) <= 1.5
        verify = subprocess.run([ANALYZE, "verify", f"--root={root}", "maskwatch.service"],
                                capture_output=True, text=True)
        assert "60-network.conf" not in verify.stderr, verify.stderr
    # MQTT to this machine only, no page: loopback, and no port to bind.
    conf.write_text('[sinks.mqtt]\nenabled = true\nhost = "localhost"\n')
    run_script("install.sh", root)
    text = dropin.read_text()
    assert "IPAddressAllow=localhost\n" in text and "SocketBindAllow" not in text
    conf.write_text("")
    run_script("install.sh", root)
    assert not dropin.exists()


def test_a_broker_named_not_numbered_also_allows_the_dns_servers(tmp_path, monkeypatch):
    sys.path.insert(0, str(DEPLOY))
    try:
        import network_dropin
    finally:
        sys.path.remove(str(DEPLOY))
    from edge.config import read_tables

    config = tmp_path / "c.toml"
    config.write_text('[sinks.mqtt]\nenabled = true\nhost = "broker.lan"\n')
    monkeypatch.setattr(network_dropin.socket, "getaddrinfo",
                        lambda host, *_, **__: [(2, 1, 6, "", ("192.168.1.7", 0))])
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# comment\nnameserver 192.168.1.1\nnameserver fd00::1\n")
    text = network_dropin.dropin(read_tables(config), resolv)
    allow = next(line for line in text.splitlines() if line.startswith("IPAddressAllow="))
    assert allow == "IPAddressAllow=192.168.1.7 192.168.1.1 fd00::1"
    assert "the DNS servers" in text


def test_off_raspberry_pi_os_the_pi_only_packages_are_left_out(tmp_path):
    out = run_script("install.sh", tmp_path / "root", RPI_PACKAGES="0").stdout
    assert "apt-get install -y --no-install-recommends python3-venv python3-numpy" in out
    assert "picamera2" not in out.split("Service user")[0].split("System packages")[1]


def test_mdwe_that_cannot_be_tested_here_keeps_the_setting(tmp_path):
    cannot = tmp_path / "cannot-test"
    cannot.write_text("#!/bin/sh\necho 'mdwe_check: cannot test here (emulated, or no seccomp)'\nexit 2\n")
    cannot.chmod(0o755)
    root = tmp_path / "root"
    result = run_script("install.sh", root, MDWE_CHECK=str(cannot))
    assert not (root / lib_value("DROPIN_WX").lstrip("/")).exists()
    assert "MemoryDenyWriteExecute could not be tested here; the unit keeps it" in result.stderr
