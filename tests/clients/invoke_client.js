// Drives the official `openwhisk` npm client (tests/node/node_modules) through invocations: a Python and a Node.js
// action invoked blocking, non-blocking and result-only, then their results and logs read back through the client.
// Usage: node invoke_client.js URL UUID:KEY SUFFIX. Asserts as it goes; prints one JSON line of what it saw.
'use strict'

const assert = require('assert')
const path = require('path')
const openwhisk = require(path.join(__dirname, '..', 'node', 'node_modules', 'openwhisk'))
const { recordOf } = require('./records.js')

const [apihost, apiKey, suffix] = process.argv.slice(2)
const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' })

const ACTIONS = {
  python: { kind: 'python:3', code: "def main(args):\n    print('py log', args.get('n'))\n    return {'lang': 'python', 'n': args.get('n')}\n" },
  node: { kind: 'nodejs:20', code: "function main(args) { console.log('js log', args.n); return { lang: 'node', n: args.n } }" }
}

// A non-blocking activation's record appears once it has run; the client answers 404 (or 202 while running).
const record = (id) => recordOf(ow, id, { ended: true })

async function main () {
  const seen = {}
  for (const [lang, spec] of Object.entries(ACTIONS)) {
    const name = `inv-${lang}-${suffix}`
    await ow.actions.create({ name, action: spec.code, kind: spec.kind })
    const blocking = await ow.actions.invoke({ name, blocking: true, params: { n: 1 } })
    assert.strictEqual(blocking.response.status, 'success')
    assert.deepStrictEqual(blocking.response.result, { lang, n: 1 })
    const result = await ow.actions.invoke({ name, blocking: true, result: true, params: { n: 2 } })
    assert.deepStrictEqual(result, { lang, n: 2 })
    const started = await ow.actions.invoke({ name, params: { n: 3 } })
    assert.match(started.activationId, /^[0-9a-f]{32}$/)
    const stored = await record(started.activationId)
    assert.deepStrictEqual(stored.response.result, { lang, n: 3 })
    const fetched = await ow.activations.result({ name: started.activationId })
    assert.deepStrictEqual(fetched.result, { lang, n: 3 })
    const logs = await ow.activations.logs({ name: started.activationId })
    assert.ok(logs.logs.some((line) => line.includes(`${lang === 'python' ? 'py' : 'js'} log 3`)), JSON.stringify(logs))
    const listed = await ow.activations.list({ name, limit: 10 })
    assert.ok(listed.some((a) => a.activationId === started.activationId))
    seen[lang] = { kind: stored.annotations.find((a) => a.key === 'kind').value, logs: logs.logs, listed: listed.length }
    await ow.actions.delete({ name })
  }
  console.log(JSON.stringify(seen))
}

main().catch((err) => { console.error(err.stack || err); process.exit(1) })
