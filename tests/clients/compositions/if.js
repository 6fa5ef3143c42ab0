// composer.if with inline actions deployed beside the conductor (the example of composer's README)
const composer = require('openwhisk-composer')

module.exports = composer.if(
  composer.action('comp-authenticate', { action: function ({ password }) { return { value: password === 'abc123' } } }),
  composer.action('comp-success', { action: function () { return { message: 'success' } } }),
  composer.action('comp-failure', { action: function () { return { message: 'failure' } } }))
