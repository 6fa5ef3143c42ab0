// Drives the official `openwhisk` npm client (tests/node/node_modules) against a whisk server: CRUD of actions,
// triggers, rules, packages and bindings in the caller's namespace. Usage: node openwhisk_client.js URL UUID:KEY SUFFIX
// Asserts as it goes; on success prints one JSON line of what it saw, for the Python test to check again.
'use strict'

const assert = require('assert')
const path = require('path')
const openwhisk = require(path.join(__dirname, '..', 'node', 'node_modules', 'openwhisk'))

const [apihost, apiKey, suffix] = process.argv.slice(2)
const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' })
const name = (base) => `${base}-${suffix}`

async function expectStatus (promise, status) {
  try {
    await promise
  } catch (err) {
    assert.strictEqual(err.statusCode, status, `expected ${status}, got ${err.statusCode}: ${err.message}`)
    return err
  }
  assert.fail(`expected a ${status} error`)
}

async function main () {
  const seen = {}
  const action = name('hello')
  const code = 'function main(params) { return { greeting: "hello " + (params.name || "world") } }'

  // actions
  const created = await ow.actions.create({ name: action, action: code, params: { name: 'client' } })
  assert.strictEqual(created.name, action)
  assert.strictEqual(created.exec.kind, 'nodejs:20')
  assert.strictEqual(created.version, '0.0.1')
  const fetched = await ow.actions.get({ name: action })
  assert.strictEqual(fetched.exec.code, code)
  assert.deepStrictEqual(fetched.parameters, [{ key: 'name', value: 'client' }])
  const meta = await ow.actions.get({ name: action, code: false })
  assert.strictEqual(meta.exec.code, undefined)
  const listed = await ow.actions.list({ limit: 200 })
  assert.ok(listed.some(a => a.name === action))
  const counted = await ow.actions.list({ count: true })
  assert.ok(counted.actions >= 1)
  const conflict = await expectStatus(ow.actions.create({ name: action, action: code }), 409)
  assert.ok(conflict.message.includes('resource already exists'))
  const updated = await ow.actions.update({ name: action, action: code, limits: { memory: 128 } })
  assert.strictEqual(updated.version, '0.0.2')
  assert.strictEqual(updated.limits.memory, 128)
  const activation = await ow.actions.invoke({ name: action, blocking: true, result: true })
  assert.deepStrictEqual(activation, { greeting: 'hello client' })
  seen.action = updated

  // packages and bindings
  const pkg = name('pkg')
  const created_pkg = await ow.packages.create({ name: pkg, package: { parameters: [{ key: 'p', value: 1 }], publish: true } })
  assert.strictEqual(created_pkg.publish, true)
  const inner = await ow.actions.create({ name: `${pkg}/inner`, action: code })
  assert.strictEqual(inner.namespace, `guest/${pkg}`)
  const binding = name('bind')
  const bound = await ow.packages.create({ name: binding, package: { binding: { namespace: 'guest', name: pkg } } })
  assert.deepStrictEqual(bound.binding, { namespace: 'guest', name: pkg })
  const viaBinding = await ow.packages.get({ name: binding })
  assert.deepStrictEqual(viaBinding.actions.map(a => a.name), ['inner'])
  const pkgs = await ow.packages.list({ limit: 200 })
  assert.ok(pkgs.some(p => p.name === pkg && p.binding === false))
  assert.ok(pkgs.some(p => p.name === binding && p.binding.name === pkg))
  const pkgUpdated = await ow.packages.update({ name: pkg, package: { publish: false } })
  assert.strictEqual(pkgUpdated.version, '0.0.2')
  assert.strictEqual(pkgUpdated.publish, false)
  await expectStatus(ow.packages.delete({ name: pkg }), 409)
  seen.binding = viaBinding

  // triggers and rules
  const trigger = name('trig')
  const t = await ow.triggers.create({ name: trigger, trigger: { parameters: [{ key: 't', value: true }] } })
  assert.strictEqual(t.name, trigger)
  const rule = name('rule')
  const r = await ow.rules.create({ name: rule, action, trigger })
  assert.strictEqual(r.status, 'active')
  assert.deepStrictEqual(r.trigger, { path: 'guest', name: trigger })
  await ow.rules.disable({ name: rule })
  assert.strictEqual((await ow.rules.get({ name: rule })).status, 'inactive')
  await ow.rules.enable({ name: rule })
  assert.strictEqual((await ow.rules.get({ name: rule })).status, 'active')
  const linked = await ow.triggers.get({ name: trigger })
  assert.strictEqual(linked.rules[`guest/${rule}`].status, 'active')
  const tUpdated = await ow.triggers.update({ name: trigger, trigger: { annotations: [{ key: 'x', value: 1 }] } })
  assert.strictEqual(tUpdated.version, '0.0.2')
  assert.ok(tUpdated.rules[`guest/${rule}`], 'an update keeps the rule links')
  assert.ok((await ow.rules.list({ limit: 200 })).some(x => x.name === rule))
  assert.ok((await ow.triggers.list({ limit: 200 })).some(x => x.name === trigger))
  seen.rule = await ow.rules.get({ name: rule })

  // deletes
  const deletedRule = await ow.rules.delete({ name: rule })
  assert.strictEqual(deletedRule.status, 'inactive')
  await ow.triggers.delete({ name: trigger })
  await ow.packages.delete({ name: binding })
  await ow.actions.delete({ name: `${pkg}/inner` })
  await ow.packages.delete({ name: pkg })
  await ow.actions.delete({ name: action })
  const missing = await expectStatus(ow.actions.get({ name: action }), 404)
  assert.ok(missing.message.includes('The requested resource does not exist.'))
  await expectStatus(ow.triggers.get({ name: trigger }), 404)
  await expectStatus(ow.rules.get({ name: rule }), 404)
  await expectStatus(ow.packages.get({ name: pkg }), 404)

  const bad = openwhisk({ apihost, api_key: apiKey.slice(0, -1) + (apiKey.endsWith('x') ? 'y' : 'x') })
  await expectStatus(bad.actions.list(), 401)
  seen.namespaces = await ow.namespaces.list()
  console.log(JSON.stringify(seen))
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
