#!/usr/bin/env python3
"""Writes a benchmark manifest set shaped like a real platform release: a few dozen large
CustomResourceDefinitions (deep openAPIV3Schema trees with descriptions, as cert-manager,
Argo CD or Crossplane ship) plus Deployments, Services and ConfigMaps: ~100 files, ~5.5 MB.
Deterministic: the same files on every run. Usage: gen-bench-corpus.py OUT_DIR [--large]

--large writes the scale point instead: 20,000 ConfigMaps in 200 files, ~36 MB, the shape of
a platform that keeps many small objects (per-tenant settings, dashboards)."""
import hashlib
import os
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)

WORDS = ("the controller reconciles resource status field value when specified must be "
         "reference secret namespace selector template replicas container image policy "
         "condition observed generation timeout interval duration certificate issuer").split()


def sentence(seed, n):
    h = hashlib.sha256(seed.encode()).digest()
    return " ".join(WORDS[h[i % 32] % len(WORDS)] for i in range(n)).capitalize() + "."


def schema(name, depth, indent):
    pad = " " * indent
    lines = [f"{pad}description: {sentence(name, 24)}", f"{pad}type: object", f"{pad}properties:"]
    for i in range(6 if depth > 0 else 10):
        field = f"{WORDS[(len(name) + i * 7) % len(WORDS)]}{i}"
        lines.append(f"{pad}  {field}:")
        if depth > 0 and i < 3:
            lines.extend(schema(f"{name}.{field}", depth - 1, indent + 4))
        else:
            lines.append(f"{pad}    description: {sentence(name + field, 30)}")
            lines.append(f"{pad}    type: {'string' if i % 3 else 'integer'}")
    return lines


def write(files, note=""):
    """Writes `files` under OUT_DIR and says on stderr what was written."""
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(out, path)), exist_ok=True)
        with open(os.path.join(out, path), "w") as f:
            f.write(text)
    total = sum(len(t) for t in files.values())
    print(f"{len(files)} files, {total / 1e6:.1f} MB{note}", file=sys.stderr)


files = {}
if "--large" in sys.argv[2:]:
    for f in range(200):
        files[f"tenants/batch{f:03d}.yaml"] = "".join(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tenant%05d\n  namespace: tenants\n  labels: {app.kubernetes.io/part-of: tenants, tenant: t%05d}\ndata:\n" % (n, n)
            + "".join(f"  key{i}: '{sentence(str(n * 100 + i), 14)}'\n" for i in range(13))
            for n in range(f * 100, f * 100 + 100))
    write(files, ", 20000 objects")
    sys.exit(0)
for c in range(20):
    kind = f"Widget{c:02d}"
    body = [
        "apiVersion: apiextensions.k8s.io/v1",
        "kind: CustomResourceDefinition",
        "metadata:",
        f"  name: widget{c:02d}s.platform.example.com",
        "spec:",
        "  group: platform.example.com",
        f"  names: {{kind: {kind}, plural: widget{c:02d}s, singular: widget{c:02d}}}",
        "  scope: Namespaced",
        "  versions:",
    ]
    for v in ("v1alpha1", "v1"):
        body += [f"  - name: {v}", "    served: true", f"    storage: {'true' if v == 'v1' else 'false'}",
                 "    schema:", "      openAPIV3Schema:"]
        body += schema(f"{kind}.{v}", 3, 8)
    files[f"crds/widget{c:02d}.yaml"] = "\n".join(body) + "\n"
for d in range(30):
    files[f"apps/service{d:02d}.yaml"] = f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: service{d:02d}
  namespace: platform
spec:
  replicas: 3
  selector: {{matchLabels: {{app: service{d:02d}}}}}
  template:
    metadata: {{labels: {{app: service{d:02d}}}}}
    spec:
      containers:
      - name: app
        image: registry.example.com/platform/service{d:02d}@sha256:{hashlib.sha256(str(d).encode()).hexdigest()}
        env: [{", ".join(f"{{name: VAR_{i}, value: '{sentence(str(d) + str(i), 3)}'}}" for i in range(20))}]
---
apiVersion: v1
kind: Service
metadata: {{name: service{d:02d}, namespace: platform}}
spec: {{selector: {{app: service{d:02d}}}, ports: [{{port: 80}}]}}
"""
for m in range(54):
    files[f"config/settings{m:02d}.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings%02d\n  namespace: platform\ndata:\n" % m + "".join(
        f"  key{i}: '{sentence(str(m * 1000 + i), 12)}'\n" for i in range(120))
write(files)
