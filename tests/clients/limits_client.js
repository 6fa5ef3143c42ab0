// Drives the official `openwhisk` npm client against a server whose blocking wait is 1 s and which allows one
// activation in flight at a time: blocking invokes that outlast the wait, and one more while one still runs.
// Usage: node limits_client.js URL UUID:KEY SUFFIX. Asserts as it goes; prints one JSON line of what it saw.
'use strict'

const assert = require('assert')
const path = require('path')
const openwhisk = require(path.join(__dirname, '..', 'node', 'node_modules', 'openwhisk'))
const { recordOf } = require('./records.js')

const [apihost, apiKey, suffix] = process.argv.slice(2)
const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' })

const record = (id) => recordOf(ow, id)

async function main () {
  const seen = {}
  const slow = `slow-${suffix}`
  await ow.actions.create({ name: slow, action: 'function main() { return new Promise(r => setTimeout(() => r({ done: true }), 3000)) }' })
  // A 202 is no error to the client: a blocking call answers the activation id; result-only rejects with it.
  const accepted = await ow.actions.invoke({ name: slow, blocking: true })
  assert.match(accepted.activationId, /^[0-9a-f]{32}$/)
  try {
    await ow.actions.invoke({ name: slow })
    assert.fail('expected a 429')
  } catch (err) {
    assert.strictEqual(err.statusCode, 429, err.message)
    seen.error429 = { message: err.message, error: err.error }
  }
  await record(accepted.activationId)
  const rejected = await ow.actions.invoke({ name: slow, blocking: true, result: true }).then(() => null, (r) => r)
  assert.match(rejected.activationId, /^[0-9a-f]{32}$/)
  await record(rejected.activationId)
  console.log(JSON.stringify(seen))
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
