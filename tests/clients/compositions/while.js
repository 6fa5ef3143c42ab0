// let-bound variables, a while loop over them, and a function reading them at the end
const composer = require('openwhisk-composer')

module.exports = composer.let({ i: 0, total: 0 },
  composer.while(() => i < 4, () => { total += i; i++ }),
  () => ({ total, i }))
