"""Decrypt what kubectl-duli-secrets sealed, with kubesealpy (an implementation we did not write).

usage:
  kubesealpy_oracle.py unseal KEY.pem FILE [--name N] [--namespace NS] [--scope S]
      Unseal every SealedSecret document of FILE (YAML stream or concatenated JSON). --name/--namespace
      rewrite the SealedSecret's metadata first (a renamed or moved secret); --scope overrides the scope
      its annotations select. Prints [{"name":…, "namespace":…, "data": {key: base64}}] as JSON.
  kubesealpy_oracle.py unseal-raw KEY.pem FILE --scope S [--name N] [--namespace NS]
      FILE holds one bare base64 value (kubeseal --raw output). Prints the plaintext as base64.
  kubesealpy_oracle.py seal CERT.pem FILE [--scope S]
      Seal every Secret document of FILE (YAML; `data` base64, `stringData` text) with kubesealpy, as
      kubeseal would: prints the SealedSecrets as a YAML stream. The input for our unseal/rotate tests.
Exit 3 with "NoMatchingKeyError" on stderr when the key cannot decrypt.
"""

import argparse
import base64
import json
import sys

import yaml
from kubesealpy import NoMatchingKeyError, SealedSecret, Sealer, SealingScope, Unsealer

SCOPES = {
    "strict": SealingScope.STRICT,
    "namespace-wide": SealingScope.NAMESPACE_WIDE,
    "cluster-wide": SealingScope.CLUSTER_WIDE,
}


def documents(text):
    if text.lstrip().startswith("{"):
        decoder, index, docs = json.JSONDecoder(), 0, []
        while index < len(text):
            while index < len(text) and text[index].isspace():
                index += 1
            if index == len(text):
                break
            doc, index = decoder.raw_decode(text, index)
            docs.append(doc)
        return docs
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["unseal", "unseal-raw", "seal"])
    parser.add_argument("key")
    parser.add_argument("file")
    parser.add_argument("--name")
    parser.add_argument("--namespace")
    parser.add_argument("--scope", choices=sorted(SCOPES))
    args = parser.parse_args()
    if args.command == "seal":
        sealer = Sealer.from_certificate_file(args.key)
        docs = []
        for doc in documents(open(args.file, encoding="utf-8").read()):
            data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
            data.update({k: v.encode() for k, v in (doc.get("stringData") or {}).items()})
            meta = doc["metadata"]
            sealed = sealer.seal(
                name=meta["name"],
                namespace=meta["namespace"],
                data=data,
                scope=SCOPES[args.scope or "strict"],
                secret_type=doc.get("type", "Opaque"),
                labels=meta.get("labels"),
            )
            docs.append(sealed.to_yaml())
        print("---\n" + "---\n".join(docs), end="")
        return
    unsealer = Unsealer.from_private_key_file(args.key)
    text = open(args.file, encoding="utf-8").read()
    scope = SCOPES[args.scope] if args.scope else None
    try:
        if args.command == "unseal-raw":
            plain = unsealer.unseal_value(
                base64.b64decode(text, validate=True), namespace=args.namespace, name=args.name, scope=scope or SealingScope.STRICT
            )
            print(base64.b64encode(plain).decode())
            return
        out = []
        for doc in documents(text):
            if args.name:
                doc["metadata"]["name"] = args.name
            if args.namespace:
                doc["metadata"]["namespace"] = args.namespace
            secret = unsealer.unseal(SealedSecret.model_validate(doc), scope=scope)
            out.append({"name": secret.metadata.name, "namespace": secret.metadata.namespace, "data": secret.data})
        print(json.dumps(out))
    except NoMatchingKeyError:
        print("NoMatchingKeyError", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
