"""``python -m gradnet verify FILE [--signer KEY]``: checks a saved answer,
receipt or certificate offline, as ``gradnet receipt verify`` does."""

from __future__ import annotations

import argparse
import sys

from .errors import VerificationError
from .receipts import verify_file


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gradnet", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("verify", help="check a receipt, an answer or a certificate offline")
    v.add_argument("file")
    v.add_argument("--signer", help="require this signer (hex ed25519 public key)")
    args = p.parse_args(argv)
    try:
        out = verify_file(args.file, args.signer)
    except (VerificationError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if out.receipt is not None:
        r = out.receipt
        print(f"signature: valid (node {r.node})\nmodel: {r.model}\nrequest: {r.request_hash}\n"
              f"output: {r.output_hash}\nruntime: {r.runtime['name']} {r.runtime['version']}\nmode: {r.mode}")
        if out.checked == "answer":
            print("answer: matches the signed output hash")
        elif out.checked == "outputs":
            print("outputs: match the signed output hash")
    if out.certificate is not None and out.verdict is not None:
        c, d = out.certificate, out.verdict
        print(f"certificate: {c.mode}, {len(d.agreeing)} of {len(c.answers)} answers agree on {d.output_hash}")
    for n in out.notes:
        print(f"note: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
