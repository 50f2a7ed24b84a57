"""Wiring identity to the simulators on a development machine or in tests: our bank-link key pair, the
merchant registration the bank simulator needs, and the trust anchors and bank certificates identity
needs (fetched from the running simulators).

    python -m klients_simulators.devsetup merchants --dir var/providers --return-base http://127.0.0.1:8001
    python -m klients_simulators.devsetup fetch --dir var/providers --smartid http://127.0.0.1:8091 \\
        --banks http://127.0.0.1:8093 --identity http://127.0.0.1:8001

Each prints ``NAME=value`` lines (shell-quoted) for the environment of the next process.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MERCHANT_ID = "KLIENTS"
BANKS = (("swedbank", "Swedbank", "v009", "SWEDBANK_LV", "/swedbank/banklink"),
         ("seb", "SEB", "elink", "SEBUB", "/seb/ipc/epakindex.jsp"))


def merchant_key(folder: Path) -> tuple[Path, bytes]:
    """Return our bank-link private key file (created once) and its public key PEM."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "merchant-key.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


def merchants_env(folder: Path, identity_url: str) -> dict[str, str]:
    """Return the bank simulator's ``SIM_BANK_MERCHANTS`` for identity at ``identity_url``."""
    _, public = merchant_key(folder)
    returns = [f"{identity_url}/login/bank/{bank_id}/return" for bank_id, *_ in BANKS]
    return {"SIM_BANK_MERCHANTS": json.dumps({MERCHANT_ID: {
        "public_key_pem": public.decode(), "return_urls": returns,
        "elink_return_url": f"{identity_url}/login/bank/seb/return"}})}


def fetch_env(folder: Path, smartid_url: str, banks_url: str) -> dict[str, str]:
    """Fetch the Smart-ID CA and the banks' certificates; return identity's environment for them."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = folder / "smartid-ca.pem"
    ca.write_bytes(requests.get(f"{smartid_url}/test/ca.pem", timeout=10).content)
    key_file, _ = merchant_key(folder)
    banks = []
    for bank_id, name, protocol, sender, path in BANKS:
        cert = folder / f"{bank_id}.pem"
        cert.write_bytes(requests.get(f"{banks_url}/test/{bank_id}/certificate.pem", timeout=10).content)
        banks.append({"bank_id": bank_id, "display_name": name, "protocol": protocol, "url": f"{banks_url}{path}",
                      "merchant_id": MERCHANT_ID, "bank_sender_id": sender, "bank_certificate_file": str(cert),
                      "our_private_key_file": str(key_file) if protocol == "v009" else None})
    return {"SMARTID_TRUST_ANCHORS": str(ca), "BANKS": json.dumps(banks)}


def main(argv: list[str] | None = None) -> int:
    """Print environment lines for the chosen step."""
    parser = argparse.ArgumentParser(prog="python -m klients_simulators.devsetup")
    parser.add_argument("step", choices=["merchants", "fetch"])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--identity", default="http://127.0.0.1:8001")
    parser.add_argument("--smartid", default="http://127.0.0.1:8091")
    parser.add_argument("--banks", default="http://127.0.0.1:8093")
    args = parser.parse_args(argv)
    env = merchants_env(args.dir, args.identity) if args.step == "merchants" else fetch_env(
        args.dir, args.smartid, args.banks)
    for name, value in env.items():
        print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
