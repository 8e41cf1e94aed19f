#!/usr/bin/env python3
"""Developer entry point that needs only Python 3.11+: ``python3 dev.py run`` or ``python3 dev.py test``.

It keeps a virtual environment in ``.venv`` with comms installed (re-installed when pyproject.toml
changes), then runs comms or the test suite inside it. Any further arguments are passed on.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".comms-installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv …", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("installing comms and its dependencies into .venv …", flush=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[test]"], check=True)
    STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if sys.version_info < (3, 11):  # noqa: UP036 - this file is what an older Python runs first
        sys.exit("comms needs Python 3.11 or newer")
    command, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if command not in {"run", "test", "worker", "comms"}:
        print(__doc__)
        return 0 if command == "help" else 2
    ensure_venv()
    os.chdir(ROOT)
    if command == "test":
        lint = subprocess.run([str(BIN / "ruff"), "check", "."])
        if lint.returncode:
            return lint.returncode
        return subprocess.run([str(BIN / "python"), "-m", "pytest", *rest]).returncode
    args = {"run": ["run"], "worker": ["worker"], "comms": []}[command] + rest
    os.execv(str(BIN / "comms"), [str(BIN / "comms"), *args])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
