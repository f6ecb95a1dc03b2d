"""Does the runtime's stack survive MemoryDenyWriteExecute=yes?

maskwatch.service sets MemoryDenyWriteExecute=yes. If any library (a JIT, a
trampoline, a .so that needs an executable stack) wants memory that is writable
and executable, the service would fail on the Pi. This script applies the same
restriction to itself, then imports the runtime's libraries, runs one
inference through LiteRT with XNNPACK and one YuNet face detection through
OpenCV's DNN module, and says whether that worked.

    python deploy/mdwe_check.py [MODEL.tflite | MODEL_DIR]
    # on the Pi, after installing:
    sudo -u maskwatch /opt/maskwatch/venv/bin/python /opt/maskwatch/deploy/mdwe_check.py

The restriction is systemd's own: a seccomp filter that refuses mmap() with both
PROT_WRITE and PROT_EXEC, any mprotect()/pkey_mprotect() with PROT_EXEC, and
shmat() with SHM_EXEC (what systemd 252 on Bookworm installs), plus the kernel's
PR_SET_MDWE where the kernel has it (what newer systemd uses). Exit 0: the stack
runs; 1: something broke (the error says what; drop MemoryDenyWriteExecute=
with `systemctl edit maskwatch`); 2: cannot test here - the filter can't be
applied (under qemu-user emulation, prctl(PR_SET_SECCOMP) fails with EINVAL; a
container may forbid it), which says nothing either way about the Pi.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import platform
import struct
import sys
from pathlib import Path

# (AUDIT_ARCH, mmap, mprotect, pkey_mprotect, shmat) syscall numbers.
ARCHES = {
    "x86_64": (0xC000003E, 9, 10, 329, 30),
    "aarch64": (0xC00000B7, 222, 226, 288, 196),
}
PROT_WRITE, PROT_EXEC, SHM_EXEC = 0x2, 0x4, 0o100000
EPERM = 1
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000


def _bpf_program(arch: str) -> bytes:
    """Classic BPF: deny W+X mmap, exec mprotect and SHM_EXEC shmat with EPERM."""
    audit_arch, mmap, mprotect, pkey_mprotect, shmat = ARCHES[arch]
    ld_abs, jeq, and_k, ret = 0x20, 0x15, 0x54, 0x06
    nr_off, arch_off, arg2_off = 0, 4, 16 + 8 * 2  # seccomp_data; arg2 low word (LE)

    def ins(code, k, jt=0, jf=0):
        return struct.pack("=HBBI", code, jt, jf, k)

    def deny_if(mask, value):
        """Load the prot/flags argument; EPERM if (arg & mask) == value, else allow."""
        return [ins(ld_abs, arg2_off), ins(and_k, mask), ins(jeq, value, 0, 1),
                ins(ret, RET_ERRNO | EPERM), ins(ret, RET_ALLOW)]

    checks = [
        ([mmap], deny_if(PROT_WRITE | PROT_EXEC, PROT_WRITE | PROT_EXEC)),
        ([mprotect, pkey_mprotect], deny_if(PROT_EXEC, PROT_EXEC)),
        ([shmat], deny_if(SHM_EXEC, SHM_EXEC)),
    ]
    head = [ins(ld_abs, arch_off), ins(jeq, audit_arch, 1, 0),
            ins(ret, RET_ALLOW),  # another ABI: not ours to judge
            ins(ld_abs, nr_off)]
    dispatch = [nr for nrs, _ in checks for nr in nrs]
    prog, body = list(head), []
    block_start = len(dispatch) + 1  # after the dispatch jumps and their "allow"
    starts = {}
    for nrs, block in checks:
        for nr in nrs:
            starts[nr] = block_start + len(body)
        body += block
    for i, nr in enumerate(dispatch):
        prog.append(ins(jeq, nr, starts[nr] - i - 1, 0))  # jt counts from the next one
    prog.append(ins(ret, RET_ALLOW))  # every other syscall
    prog += body
    return b"".join(prog)


def deny_write_execute() -> list[str]:
    """Apply the restriction to this process; return what was applied."""
    arch = platform.machine()
    if arch not in ARCHES:
        raise OSError(f"no syscall table for {arch}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong,
                           ctypes.c_ulong, ctypes.c_ulong]
    applied = []
    if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) == 0:
        applied.append("PR_SET_MDWE")
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    code = _bpf_program(arch)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]

    prog = SockFprog(len(code) // 8, code)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
                           ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    applied.append("seccomp filter")
    return applied


def filter_works() -> bool:
    """The filter must refuse W+X memory both ways, or the check proves nothing."""
    import mmap

    try:
        mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        return False
    except PermissionError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    page = libc.mmap(None, 4096, mmap.PROT_READ | mmap.PROT_WRITE,
                     mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    return libc.mprotect(page, 4096, mmap.PROT_READ | mmap.PROT_EXEC) != 0


def find_model(arg: str | None) -> Path | None:
    """The given model, else the bundled classifier, else the bundled face detector."""
    if arg:
        candidates = [Path(arg)]
    else:
        code_root = Path(__file__).resolve().parent.parent
        candidates = [code_root / "models" / "default", code_root / "models" / "blazeface"]
    for candidate in candidates:
        if candidate.suffix == ".tflite" and candidate.is_file():
            return candidate
        tflites = sorted(candidate.glob("*.tflite")) if candidate.is_dir() else []
        if tflites:
            return tflites[0]
    return None


def find_yunet() -> Path | None:
    """The bundled YuNet face detector (the default detector), if it is installed."""
    code_root = Path(__file__).resolve().parent.parent
    return next(iter(sorted((code_root / "models" / "yunet").glob("*.onnx"))), None)


def run_yunet(path: Path) -> str:
    import cv2
    import numpy as np

    detector = cv2.FaceDetectorYN.create(str(path), "", (320, 240), 0.7, 0.3, 5000)
    _, faces = detector.detect(np.zeros((240, 320, 3), np.uint8))
    return f"ran {path.name} (OpenCV DNN): {0 if faces is None else len(faces)} faces in a blank frame"


def run_model(path: Path) -> str:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=2)  # XNNPACK by default
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    return f"ran {path.name}: output {tuple(int(n) for n in out['shape'])}"


def main(argv: list[str]) -> int:
    try:
        applied = deny_write_execute()
    except OSError as exc:
        print(f"mdwe_check: cannot test here (emulated, or no seccomp): {exc}; this says "
              "nothing about MemoryDenyWriteExecute on a Pi")
        return 2
    if not filter_works():
        print("mdwe_check: the filter did not refuse a W+X mapping; nothing proven")
        return 2
    print(f"mdwe_check: write+execute memory denied ({', '.join(applied)}) "
          f"on {platform.machine()}, Python {platform.python_version()}")
    failed = False
    # Required by the runtime; picamera2/libcamera only where apt installed them.
    for name, required in [("numpy", True), ("cv2", True), ("ai_edge_litert.interpreter", True),
                           ("gpiozero", True), ("tqdm", True),
                           ("libcamera", False), ("picamera2", False), ("lgpio", False)]:
        try:
            importlib.import_module(name)
            print(f"  ok    import {name}")
        except ImportError as exc:
            if required or "No module named" not in str(exc):
                failed = True
                print(f"  FAIL  import {name}: {exc}")
            else:
                print(f"  skip  import {name}: not installed")
        except Exception as exc:  # a .so that can't load under the filter lands here
            failed = True
            print(f"  FAIL  import {name}: {type(exc).__name__}: {exc}")
    if "picamera2" in sys.modules:
        # Starts libcamera's camera manager, which loads the pipeline handler and
        # its IPA module (.so) without taking the camera from a running service.
        try:
            cameras = sys.modules["picamera2"].Picamera2.global_camera_info()
            print(f"  ok    libcamera lists {len(cameras)} camera(s)")
        except Exception as exc:
            failed = True
            print(f"  FAIL  libcamera camera list: {type(exc).__name__}: {exc}")
    model = find_model(argv[0] if argv else None)
    if model is None:
        print("  skip  inference: no .tflite given or bundled in models/")
    else:
        try:
            print(f"  ok    {run_model(model)}")
        except Exception as exc:
            failed = True
            print(f"  FAIL  inference on {model}: {type(exc).__name__}: {exc}")
    yunet = find_yunet()
    if yunet is None:
        print("  skip  face detection: no models/yunet/*.onnx beside the code")
    else:
        try:
            print(f"  ok    {run_yunet(yunet)}")
        except Exception as exc:
            failed = True
            print(f"  FAIL  face detection with {yunet}: {type(exc).__name__}: {exc}")
    print("mdwe_check: " + ("FAILED - do not use MemoryDenyWriteExecute=yes" if failed
                            else "the stack runs with MemoryDenyWriteExecute=yes"))
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    sys.exit(main(sys.argv[1:]))
