local forge = import 'forge.libsonnet';

[
  {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'reindex-' + shard, namespace: 'catalog' },
    spec: {
      schedule: '0 * * * *',
      jobTemplate: { spec: { template: { spec: {
        restartPolicy: 'OnFailure',
        containers: [{ name: 'reindex', image: forge.artifact('catalog-worker.ref'), args: ['--shard', shard] }],
      } } } },
    },
  }
  for shard in ['a', 'b']
]
