#!/usr/bin/env python3
"""A registry token server for tests (the Docker token authentication protocol).

GET /token?service=..&scope=repository:NAME:pull,push answers {"token", "access_token",
"expires_in"} with an ES256 JWT whose x5c header carries the signing certificate, which the
registry trusts through `auth.token.rootcertbundle`. Callers with the right Basic credentials
get the actions they ask for, anonymous callers `pull` only, wrong credentials a 401. Each
token request is appended to --log as "<subject> <scope>...". With --tls-cert and --tls-key
it serves HTTPS. Exits when stdin closes, so it never outlives the test process that started
it.
"""
import argparse
import base64
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

try:
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError as e:
    sys.exit(f"token-server needs PyJWT and cryptography ({e}): pip install pyjwt cryptography")

parser = argparse.ArgumentParser()
for flag in ("--key", "--cert", "--issuer", "--service", "--user", "--log"):
    parser.add_argument(flag, required=True)
for flag in ("--tls-cert", "--tls-key"):
    parser.add_argument(flag)
args = parser.parse_args()
with open(args.key, "rb") as f:
    signing_key = f.read()
with open(args.cert, "rb") as f:
    certificate = x509.load_pem_x509_certificate(f.read())
x5c = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()
user, _, password = args.user.partition(":")
log_lock = threading.Lock()


class TokenHandler(BaseHTTPRequestHandler):
    def log_message(self, *_):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urlparse(self.path)
        if url.path != "/token":
            return self.reply(404, {"error": "not found"})
        query = parse_qs(url.query)
        subject = ""
        header = self.headers.get("Authorization", "")
        if header:
            scheme, _, encoded = header.partition(" ")
            given = base64.b64decode(encoded).decode(errors="replace") if scheme == "Basic" else ""
            if given != f"{user}:{password}":
                return self.reply(401, {"errors": [{"code": "UNAUTHORIZED"}]})
            subject = user
        scopes = query.get("scope", [])
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            granted = [a for a in actions.split(",") if subject or a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": args.issuer,
            "aud": query.get("service", [args.service])[0],
            "sub": subject,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        token = jwt.encode(claims, signing_key, algorithm="ES256", headers={"x5c": [x5c]})
        with log_lock, open(args.log, "a") as log:
            log.write(" ".join([subject or "anonymous", *scopes]) + "\n")
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300})


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


server = ThreadingHTTPServer(("127.0.0.1", 0), TokenHandler)
if args.tls_cert:
    # HTTPS, as a token service on another host than the registry would be.
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(f"listening on 127.0.0.1:{server.server_address[1]}", flush=True)
threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
server.serve_forever()
