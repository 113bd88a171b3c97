"""Signs with botocore's CloudFrontSigner, the reference for tests/delivery/sign_crosscheck.rs.

  botocore_sign.py policy-url  KEY.pem KEY_PAIR_ID POLICY_FILE URL HASH   -> custom-policy signed URL
  botocore_sign.py canned-url  KEY.pem KEY_PAIR_ID URL EXPIRES HASH       -> canned-policy signed URL
  botocore_sign.py build-policy RESOURCE EXPIRES [IP|-] [NOT_BEFORE|-]     -> policy JSON

HASH is sha1 or sha256. botocore hands the signature callback the raw policy bytes; the
callback decides the algorithm (PKCS#1 v1.5 for RSA keys, DER ECDSA for EC keys).
"""
import datetime
import sys

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


def make_signer(key_path, key_pair_id, hash_name):
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    algorithm = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256()}[hash_name]

    def sign(message):
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(message, padding.PKCS1v15(), algorithm)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(message, ec.ECDSA(algorithm))
        raise SystemExit("unsupported key type")

    return CloudFrontSigner(key_pair_id, sign)


def at(seconds):
    return datetime.datetime.fromtimestamp(int(seconds), tz=datetime.timezone.utc)


def main(argv):
    command = argv[0]
    if command == "policy-url":
        key, key_pair_id, policy_file, url, hash_name = argv[1:6]
        with open(policy_file) as f:
            policy = f.read()
        print(make_signer(key, key_pair_id, hash_name).generate_presigned_url(url, policy=policy))
    elif command == "canned-url":
        key, key_pair_id, url, expires, hash_name = argv[1:6]
        signer = make_signer(key, key_pair_id, hash_name)
        print(signer.generate_presigned_url(url, date_less_than=at(expires)))
    elif command == "build-policy":
        resource, expires, ip, not_before = argv[1:5]
        signer = CloudFrontSigner("unused", lambda message: b"")
        print(
            signer.build_policy(
                resource,
                at(expires),
                date_greater_than=None if not_before == "-" else at(not_before),
                ip_address=None if ip == "-" else ip,
            )
        )
    else:
        raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv[1:])
