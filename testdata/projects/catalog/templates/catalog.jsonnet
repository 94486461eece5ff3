local forge = import 'forge.libsonnet';
local svc = import 'service.libsonnet';

function(replicas=3) {
  deployment: svc.deployment('catalog-api', forge.artifact('catalog-api.ref'), replicas),
  service: svc.service('catalog-api'),
  config: {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'catalog-settings', namespace: 'catalog' },
    data: {
      project: forge.project,
      search: '@artifact("search.uri")',
      mode: 'on',
    },
  },
}
