// Benchmark workload: a few hundred Deployments with the string work real templates do
// (formatting, hashing, sorting, comprehensions).
local n = 300;
local labels(i) = { app: 'svc-%03d' % i, tier: ['web', 'api', 'worker'][i % 3], team: 'team-%d' % (i % 7) };
local env(i) = [{ name: 'VAR_%02d' % j, value: std.md5('%d-%d' % [i, j]) } for j in std.range(0, 19)];
local checksums = std.sort([std.md5(std.toString(i)) for i in std.range(0, 999)]);
{
  apiVersion: 'v1',
  kind: 'List',
  items: [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'svc-%03d' % i, namespace: 'bench', labels: labels(i),
                  annotations: { checksum: checksums[i % std.length(checksums)] } },
      spec: {
        replicas: 1 + i % 5,
        selector: { matchLabels: labels(i) },
        template: {
          metadata: { labels: labels(i) },
          spec: { containers: [{ name: 'app', image: 'registry.example.com/bench/svc-%03d:1.%d.0' % [i, i % 10], env: env(i),
                                 resources: { requests: { cpu: '%dm' % (100 + i), memory: '%dMi' % (128 + i) } } }] },
        },
      },
    }
    for i in std.range(0, n - 1)
  ],
}
