// a sequence of inline functions, run by the conductor action itself
const composer = require('openwhisk-composer')

module.exports = composer.sequence(p => ({ n: p.n + 1 }), p => ({ n: p.n * 2 }))
