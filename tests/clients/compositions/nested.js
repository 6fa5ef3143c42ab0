// nesting: a while whose body is an if over actions, inside a try
const composer = require('openwhisk-composer')

module.exports = composer.try(
  composer.let({ count: 0, log: [] },
    composer.while(() => count < 3,
      composer.sequence(
        () => ({ n: count }),
        composer.if(p => ({ value: p.n % 2 === 0 }),
          composer.action('comp-even', { action: function ({ n }) { return { word: `even ${n}` } } }),
          composer.action('comp-odd', { action: function ({ n }) { return { word: `odd ${n}` } } })),
        p => { log.push(p.word); count++ })),
    () => ({ log })),
  e => ({ failed: e }))
