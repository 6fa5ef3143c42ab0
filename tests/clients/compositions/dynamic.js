// repeat, retain, and dynamic: the action to invoke is named at run time, beside the conductor (__OW_ACTION_NAME)
const composer = require('openwhisk-composer')

module.exports = composer.sequence(
  composer.repeat(3, p => ({ n: p.n + 1 })),
  composer.retain(p => ({ n: p.n * 10 })),
  p => ({
    type: 'action',
    name: process.env.__OW_ACTION_NAME.split('/').slice(0, -1).concat('comp-double').join('/'),
    params: { n: p.result.n, before: p.params.n }
  }),
  composer.dynamic(),
  composer.action('comp-double', { action: function ({ n, before }) { return { n: n * 2, before } } }))
