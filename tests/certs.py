"""Self-signed test certificates, made with the openssl command (tests skip without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def self_signed(folder: Path, name: str, alt_name: str) -> tuple[Path, Path]:
    """(certificate, key) for `name`; `alt_name` as openssl spells it: IP:127.0.0.1, DNS:x.example."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
    command += f" -subj /CN={name} -addext subjectAltName={alt_name}"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return cert, key
