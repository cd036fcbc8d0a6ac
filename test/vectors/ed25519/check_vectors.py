"""Re-checks rfc8032-ed25519.json with pyca/cryptography (OpenSSL's Ed25519, independent of
tweetnacl and of this repository): each secret key gives the public key, signing the message gives
the signature byte for byte, and the signature verifies. Run: python3 test/vectors/ed25519/check_vectors.py
"""
import json
import pathlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

raw = serialization.Encoding.Raw
vectors = json.loads((pathlib.Path(__file__).parent / "rfc8032-ed25519.json").read_text())
for case in vectors["cases"]:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(case["secretKey"]))
    public = key.public_key()
    assert public.public_bytes(raw, serialization.PublicFormat.Raw).hex() == case["publicKey"], case["name"]
    message = bytes.fromhex(case["message"])
    signature = key.sign(message)
    assert signature.hex() == case["signature"], case["name"]
    public.verify(signature, message)
    print(f"{case['name']}: ok")
