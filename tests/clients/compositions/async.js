// async: the conductor spawns a copy of itself through the openwhisk npm client and answers with its activation id
const composer = require('openwhisk-composer')

module.exports = composer.let({ tag: 'spawned' },
  composer.async(p => ({ child: tag, n: p.n })),
  p => ({ spawnedId: p.activationId, parent: true }))
