"""A stand-in Kubernetes API server for `kubectl apply --dry-run=client`: API discovery for
the kinds an install uses, and 404 for every object (nothing exists yet). No validation,
no state: kubectl itself parses and maps every object. Prints its port, then serves until
stdin closes."""
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

def resources(*kinds):
    return [{"name": plural, "singularName": plural[:-1], "namespaced": namespaced, "kind": kind,
             "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
            for kind, plural, namespaced in kinds]

DISCOVERY = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v}],
         "preferredVersion": {"groupVersion": f"{group}/{v}", "version": v}}
        for group, v in [("apps", "v1"), ("rbac.authorization.k8s.io", "v1"),
                         ("networking.k8s.io", "v1"), ("apiextensions.k8s.io", "v1"),
                         ("argoproj.io", "v1alpha1")]]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources(
        ("ConfigMap", "configmaps", True), ("Secret", "secrets", True),
        ("Service", "services", True), ("ServiceAccount", "serviceaccounts", True),
        ("Namespace", "namespaces", False))},
    "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": resources(
        ("Deployment", "deployments", True), ("StatefulSet", "statefulsets", True))},
    "/apis/rbac.authorization.k8s.io/v1": {"kind": "APIResourceList",
        "groupVersion": "rbac.authorization.k8s.io/v1", "resources": resources(
        ("Role", "roles", True), ("RoleBinding", "rolebindings", True),
        ("ClusterRole", "clusterroles", False), ("ClusterRoleBinding", "clusterrolebindings", False))},
    "/apis/networking.k8s.io/v1": {"kind": "APIResourceList", "groupVersion": "networking.k8s.io/v1",
        "resources": resources(("NetworkPolicy", "networkpolicies", True))},
    "/apis/apiextensions.k8s.io/v1": {"kind": "APIResourceList", "groupVersion": "apiextensions.k8s.io/v1",
        "resources": resources(("CustomResourceDefinition", "customresourcedefinitions", False))},
    "/apis/argoproj.io/v1alpha1": {"kind": "APIResourceList", "groupVersion": "argoproj.io/v1alpha1",
        "resources": resources(("Application", "applications", True), ("AppProject", "appprojects", True))},
}

class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.split("?")[0]
        body = DISCOVERY.get(path)
        status = 200
        if body is None:
            status = 404
            body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": "not found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
