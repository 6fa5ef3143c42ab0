// an action's error result caught by try, then a finally that always runs
const composer = require('openwhisk-composer')

module.exports = composer.finally(
  composer.try(
    composer.action('comp-boom', { action: function () { return { error: 'boom' } } }),
    e => ({ caught: e.error })),
  p => Object.assign({}, p, { cleaned: true }))
