// A small service library: a Deployment and a Service for one container.
{
  deployment(name, image, replicas=2):: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: name, namespace: 'catalog', labels: { app: name } },
    spec: {
      replicas: replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: name, image: image, ports: [{ containerPort: 8080 }] }] },
      },
    },
  },
  service(name):: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: name, namespace: 'catalog' },
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] },
  },
}
