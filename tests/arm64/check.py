"""``sudo make arm64-check``: the runtime on arm64 — the Pi's OS, Python and wheels — under
emulation, installer included, compared number for number with this x86 machine.

For Bookworm (Python 3.11) and Trixie (Python 3.13), each in ``build/arm64/<suite>/root``:

1. build the root once, or reuse it (``REBUILD=1`` starts over): ``debootstrap --arch=arm64
   --foreign --variant=minbase`` here, its second stage inside through qemu-user and
   binfmt_misc (both set up here when missing);
2. run the real ``deploy/install.sh`` inside, as a Pi would (``RPI_PACKAGES=0``: Debian has
   no python3-picamera2 or python3-lgpio; systemd isn't running in a chroot, which the
   installer says): the user and groups, the venv from PyPI's arm64 wheels with numpy pinned
   to apt's, the code, the model, the config and the unit;
3. run the installed unit's own ``ExecStart`` command line, as its ``User=``, on the demo
   frames, with gpiozero's mock pins;
4. replay the frames there and here (``python -m edge.measure.replay``: every detector's
   boxes, the int8 model's probabilities, the events on a simulated clock) and compare: any
   difference fails and is printed;
5. ``edge bench --frames 20`` inside: emulated, so no speed figure, but proof that it runs.

Two traps of emulation are avoided as on the trial run: LiteRT reads /proc/cpuinfo, which
under qemu-user is the host's x86 one (a segfault in ``Interpreter()``), so a Raspberry Pi
4's (Cortex-A72) is bound over it in the root; and ``QEMU_CPU=cortex-a72`` makes XNNPACK pick
the Pi 4's kernels rather than those of qemu's default CPU model. Mounts are always undone,
and a root with anything still mounted in it is never deleted.

A step that fails stops the check there: it prints the suite, the step, its command and its
last lines (each step's whole output is in ``build/arm64/<suite>/*.log``), and the later
suites are not run. Prints a table per OS, with which suites passed, and writes
``build/arm64/summary.json``. Exit 0: every suite passed; 1: a difference or a failed step;
2: not root, or the tools can't be set up.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build" / "arm64"
SUITES = {"bookworm": "3.11", "trixie": "3.13"}
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
EMULATION = {"QEMU_CPU": "cortex-a72"}
SRC_IN_ROOT = Path("/tmp/maskwatch-src")           # where the tree is copied for install.sh
CHECK_IN_ROOT = Path("/var/lib/maskwatch/arm64-check")
TREE = ("edge", "facedata", "deploy", "systemd", "models/default", "models/blazeface", "models/yunet",
        "pyproject.toml", "README.md")
# The demo's own short cooldown, so the 24 frames raise a violation and clear it.
RUN_CONFIG = "[tracker]\ncooldown = 0.5\n"


def say(text: str) -> None:
    print(text, flush=True)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("check", True)
    return subprocess.run(cmd, **kwargs)


def in_root(root: Path, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LANG": "C.UTF-8", "HOME": "/root", **EMULATION, **kwargs.pop("env", {})}
    return run(["chroot", str(root), *cmd], env=env, **kwargs)


# --- qemu-user, binfmt_misc, debootstrap -----------------------------------------------------

def ensure_tools() -> None:
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)])
    missing = [pkg for tool, pkg in (("debootstrap", "debootstrap"),
                                     ("qemu-aarch64-static", "qemu-user-static"),
                                     ("update-binfmts", "binfmt-support"))
               if shutil.which(tool) is None]
    if missing:
        say(f"installing {' '.join(missing)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        if run(["apt-get", "install", "-y", "-q", *missing], env=env, check=False).returncode:
            run(["apt-get", "update", "-q"], env=env)
            run(["apt-get", "install", "-y", "-q", *missing], env=env)
    if not (binfmt / "qemu-aarch64").exists():
        run(["update-binfmts", "--enable", "qemu-aarch64"], check=False)
    entry = (binfmt / "qemu-aarch64").read_text() if (binfmt / "qemu-aarch64").exists() else ""
    if "enabled" not in entry or "F" not in re.search(r"flags: (\w*)", entry or "flags: ").group(1):
        raise SystemExit("arm64-check: qemu-aarch64 is not registered with binfmt_misc with the "
                         "F flag (qemu-user-static does that): cannot run arm64 programs here")


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    return [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1] == prefix or line.split()[1].startswith(prefix + "/")]


# What `mounted` puts in a root, in order: the only mounts this check ever unmounts.
OWN_MOUNTS = (("proc", "proc", "proc"), ("sysfs", "sys", "sys"), ("bind", "/dev", "dev"),
              ("bind", "/dev/pts", "dev/pts"),
              ("bind", str(Path(__file__).with_name("cpuinfo-pi4")), "proc/cpuinfo"))


def release_own_mounts(root: Path) -> list[str]:
    """Unmount what an interrupted run (Ctrl-C, a timeout, a kill) left mounted in ``root``:
    only this check's own mount points, innermost first, however often stacked. Anything
    else mounted there is not ours: refuse to go on rather than touch it."""
    root = root.resolve()
    own = {str(root / target) for _, _, target in OWN_MOUNTS}
    released = []
    while True:
        left = mounts_under(root)
        foreign = [m for m in left if m not in own]
        if foreign:
            raise SystemExit(f"arm64-check: {root} has mounts this check did not make: "
                             f"{foreign}; unmount them first")
        if not left:
            return released
        innermost = max(left, key=lambda m: m.count("/"))
        if subprocess.run(["umount", "-l", innermost], check=False).returncode != 0:
            raise SystemExit(f"arm64-check: cannot unmount {innermost}")
        released.append(innermost)


@contextmanager
def mounted(root: Path):
    """/proc (with a Pi 4's cpuinfo over it), /sys, /dev and /dev/pts in the root; always
    undone, and first undone if an interrupted run left them."""
    stale = release_own_mounts(root)
    if stale:
        say(f"released {len(stale)} mounts an interrupted run left in {root}")
    done = []
    try:
        for kind, source, target in OWN_MOUNTS:
            path = root / target
            args = ["mount", "--bind", source, str(path)] if kind == "bind" else \
                ["mount", "-t", kind, source, str(path)]
            run(args)
            done.append(path)
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")  # pip needs DNS
        yield
    finally:
        for path in reversed(done):
            subprocess.run(["umount", "-l", str(path)], check=False)
        left = mounts_under(root)
        if left:
            raise SystemExit(f"arm64-check: still mounted in {root}: {left}")


def remove_root(root: Path) -> None:
    release_own_mounts(root)
    left = mounts_under(root)
    if left:
        raise SystemExit(f"arm64-check: {root} still has {left} mounted: not deleting it")
    shutil.rmtree(root, ignore_errors=False)


def build_root(suite: str, root: Path) -> float:
    """A minimal arm64 Debian with python3, like Raspberry Pi OS Lite's base; seconds taken."""
    started = time.monotonic()
    root.parent.mkdir(parents=True, exist_ok=True)
    say(f"[{suite}] debootstrap (first stage, here)")
    run(["debootstrap", "--arch=arm64", "--foreign", "--variant=minbase",
         "--include=python3,ca-certificates", suite, str(root), MIRROR],
        stdout=subprocess.DEVNULL)
    say(f"[{suite}] debootstrap (second stage, emulated)")
    in_root(root, ["/debootstrap/debootstrap", "--second-stage"], stdout=subprocess.DEVNULL)
    (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {suite} main\n")
    (root / ".maskwatch-base").write_text(suite + "\n")
    return time.monotonic() - started


# --- the check inside one root -----------------------------------------------------------------

def copy_tree(root: Path) -> Path:
    dest = root / SRC_IN_ROOT.relative_to("/")
    shutil.rmtree(dest, ignore_errors=True)
    for item in TREE:
        source, target = ROOT / item, dest / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.keras"))
        else:
            shutil.copy2(source, target)
    return dest


def trust_local_cas(root: Path) -> None:
    """The CAs an admin added to this machine (a TLS-intercepting proxy's, say), trusted in
    the root too, so that pip inside reaches PyPI the way pip here does."""
    local = Path("/usr/local/share/ca-certificates")
    cas = sorted(local.glob("*.crt")) if local.is_dir() else []
    if not cas:
        return
    dest = root / local.relative_to("/")
    dest.mkdir(parents=True, exist_ok=True)
    for ca in cas:
        shutil.copy(ca, dest / ca.name)
    in_root(root, ["update-ca-certificates"], capture_output=True)


def exec_start(root: Path) -> tuple[list[str], dict, str, str]:
    """The installed unit's ExecStart, Environment, WorkingDirectory and User."""
    unit = (root / "etc/systemd/system/maskwatch.service").read_text()
    values = dict(re.findall(r"^(ExecStart|WorkingDirectory|User)=(.*)$", unit, re.M))
    env = dict(pair.split("=", 1) for line in re.findall(r"^Environment=(.*)$", unit, re.M)
               for pair in line.split())
    return values["ExecStart"].split(), env, values["WorkingDirectory"], values["User"]


class StepFailed(Exception):
    """A step of one suite failed: which, the command and the last lines it printed."""

    def __init__(self, suite: str, step: str, cmd: list[str], code: int, output: str):
        self.suite, self.step, self.cmd, self.code = suite, step, cmd, code
        self.tail = "\n".join(output.rstrip().splitlines()[-25:])
        super().__init__(f"[{suite}] {step} failed (exit {code})")

    def report(self) -> str:
        return (f"\narm64-check: {self.suite}: {self.step} failed (exit {self.code})\n"
                f"command: {' '.join(self.cmd)}\nits last lines:\n{self.tail}")


def step(suite: str, what: str, root: Path, cmd: list[str], log: Path | None = None,
         env: dict | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``root``; its output kept in ``log``; a failure is :class:`StepFailed`."""
    done = in_root(root, cmd, env=env or {}, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if log is not None:
        log.write_text(output)
    if done.returncode:
        raise StepFailed(suite, what, cmd, done.returncode, output)
    return done


def check_suite(suite: str, frames: Path, x86_replay: Path) -> dict:
    root = BUILD / suite / "root"
    row = {"os": suite, "python": SUITES[suite]}
    if os.environ.get("REBUILD") == "1" and root.exists():
        say(f"[{suite}] REBUILD=1: removing {root}")
        remove_root(root)
    if not (root / ".maskwatch-base").exists():
        if root.exists():
            remove_root(root)  # a half-built root from an interrupted run
        row["root_build_s"] = round(build_root(suite, root), 1)
    else:
        say(f"[{suite}] reusing {root}")
        row["root_build_s"] = 0.0
    with mounted(root):
        python = step(suite, "the root's Python", root,
                      ["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
                      ).stdout.strip()
        if python != SUITES[suite]:
            raise SystemExit(f"arm64-check: {suite} has Python {python}, expected {SUITES[suite]}")
        copy_tree(root)
        trust_local_cas(root)
        say(f"[{suite}] deploy/install.sh (emulated: apt, PyPI's arm64 wheels)")
        started = time.monotonic()
        step(suite, "deploy/install.sh", root, ["bash", str(SRC_IN_ROOT / "deploy/install.sh")],
             BUILD / suite / "install.log",
             {"RPI_PACKAGES": "0", "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"})
        row["install_s"] = round(time.monotonic() - started, 1)
        row["venv_mb"] = int(run(["du", "-sm", str(root / "opt/maskwatch/venv")],
                                 capture_output=True, text=True).stdout.split()[0])
        check = root / CHECK_IN_ROOT.relative_to("/")
        shutil.rmtree(check, ignore_errors=True)
        shutil.copytree(frames, check / "frames")
        (check / "run.toml").write_text(RUN_CONFIG)
        in_root(root, ["chown", "-R", "maskwatch:maskwatch", str(CHECK_IN_ROOT)])

        command, env, cwd, user = exec_start(root)
        as_user = ["runuser", "-u", user, "--", "env", "-C", cwd]
        mock = {"GPIOZERO_PIN_FACTORY": "mock"}
        say(f"[{suite}] the unit's ExecStart, as {user}, on the demo frames")
        service = step(suite, "the unit's ExecStart", root,
                       [*as_user, *command, "--source", str(CHECK_IN_ROOT / "frames")],
                       BUILD / suite / "service.log", {**env, **mock})
        row["service_exit"] = service.returncode
        row["service_events"] = sum(line.startswith('{"time"') for line in service.stdout.splitlines())

        say(f"[{suite}] replay: detectors, int8 probabilities, events on a simulated clock")
        python_in = "/opt/maskwatch/venv/bin/python"
        step(suite, "replay", root,
             [*as_user, python_in, "-m", "edge.measure.replay", "--frames",
              str(CHECK_IN_ROOT / "frames"), "--config", str(CHECK_IN_ROOT / "run.toml"),
              "--json", str(CHECK_IN_ROOT / "replay.json")], BUILD / suite / "replay.log", mock)
        arm_replay = BUILD / suite / "replay.json"
        shutil.copy(check / "replay.json", arm_replay)
        compare = run([sys.executable, "-m", "edge.measure.replay", "--compare", str(x86_replay),
                       str(arm_replay)], capture_output=True, text=True, check=False, cwd=ROOT)
        say(compare.stdout.rstrip())
        replayed = json.loads(arm_replay.read_text())
        row["frames_compared"] = len(replayed["frames"])
        row["differences"] = sum(line.startswith("DIFFERENT") for line in compare.stdout.splitlines())
        row["events"] = len(replayed["events"])
        row["runtime"] = replayed["runtime"]

        say(f"[{suite}] edge bench --frames 20 (emulated: proves it runs, says nothing of speed)")
        step(suite, "edge bench", root,
             [*as_user, python_in, "-m", "edge", "bench", "--frames", "20", "--warmup", "2",
              "--source", str(CHECK_IN_ROOT / "frames"), "--json",
              str(CHECK_IN_ROOT / "bench.json")], BUILD / suite / "bench.log", mock)
        bench = json.loads((check / "bench.json").read_text())
        row["bench_fps_emulated"] = round(bench["fps"], 2)
    return row


def passed(row: dict) -> bool:
    return ("failed" not in row and "not_run" not in row and row["service_exit"] == 0
            and row["differences"] == 0 and row["service_events"] > 0)


def table(rows: list[dict]) -> str:
    head = (f"{'OS':<10}{'Python':>7}{'root s':>8}{'install s':>10}{'venv MB':>9}"
            f"{'service':>9}{'frames':>8}{'diffs':>7}{'bench fps':>11}  result")
    lines = [head]
    for r in rows:
        if "failed" in r or "not_run" in r:
            lines.append(f"{r['os']:<10}{r['python']:>7}  "
                         + (f"FAILED: {r['failed']}" if "failed" in r else "not run"))
            continue
        service = "ok" if r["service_exit"] == 0 else f"exit {r['service_exit']}"
        lines.append(f"{r['os']:<10}{r['python']:>7}{r['root_build_s']:>8.0f}{r['install_s']:>10.0f}"
                     f"{r['venv_mb']:>9}{service:>9}{r['frames_compared']:>8}{r['differences']:>7}"
                     f"{r['bench_fps_emulated']:>11.2f}  {'passed' if passed(r) else 'FAILED'}")
    return "\n".join(lines)


def _stop_on_signal(signum, _frame):
    # SIGTERM (timeout, systemd) and SIGHUP unwind like Ctrl-C, so the mounts are undone.
    raise SystemExit(f"arm64-check: stopped by {signal.Signals(signum).name}")


def main() -> int:
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    if os.geteuid() != 0:
        print("arm64-check needs root (debootstrap, chroot, mount, binfmt_misc): "
              "sudo make arm64-check", file=sys.stderr)
        return 2
    ensure_tools()
    suites = os.environ.get("SUITES", " ".join(SUITES)).split()
    frames = BUILD / "frames"
    from edge.samples import write_frames
    write_frames(frames)
    (BUILD / "run.toml").write_text(RUN_CONFIG)
    x86_replay = BUILD / "x86-replay.json"
    say("x86: replaying the demo frames here")
    run([sys.executable, "-m", "edge.measure.replay", "--frames", str(frames), "--config",
         str(BUILD / "run.toml"), "--json", str(x86_replay)], cwd=ROOT, stdout=subprocess.DEVNULL)
    rows = []
    for suite in suites:
        try:
            rows.append(check_suite(suite, frames, x86_replay))
        except StepFailed as failed:
            say(failed.report())
            rows.append({"os": suite, "python": SUITES[suite],
                         "failed": f"{failed.step} (exit {failed.code})",
                         "command": " ".join(failed.cmd), "last_lines": failed.tail})
            rows += [{"os": s, "python": SUITES[s], "not_run": True}
                     for s in suites[suites.index(suite) + 1:]]
            break
    say("\n" + table(rows))
    (BUILD / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
    good = [r["os"] for r in rows if passed(r)]
    say(f"passed: {', '.join(good) or 'none'} of {', '.join(suites)}; wrote "
        f"{BUILD / 'summary.json'}")
    return 0 if len(good) == len(suites) else 1


if __name__ == "__main__":
    sys.exit(main())
