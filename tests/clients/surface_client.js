// Drives the official `openwhisk` npm client (tests/node/node_modules) over what openwhisk_client.js and
// invoke_client.js leave out: actions made from a zip, a sequence and a docker image, listing pages, the namespace
// summary, activation filters, trigger fires, feeds (`feeds.create|get|delete` on /whisk.system/alarms/alarm),
// routes (`routes.create|get|list|delete`), the public packages of another namespace, and the OpenWhiskError each of
// whisk's error answers becomes. Usage: node surface_client.js URL UUID:KEY SUFFIX. Asserts as it goes; on success
// prints one JSON line of what it saw, for the Python test to check again.
'use strict'

const assert = require('assert')
const path = require('path')
const zlib = require('zlib')
const openwhisk = require(path.join(__dirname, '..', 'node', 'node_modules', 'openwhisk'))
const { recordOf } = require('./records.js')

const [apihost, apiKey, suffix] = process.argv.slice(2)
const ow = openwhisk({ apihost, api_key: apiKey, namespace: '_' })
const name = (base) => `${base}-${suffix}`

async function error (promise) {
  try {
    await promise
  } catch (err) {
    return { status: err.statusCode, message: err.message, error: err.error }
  }
  assert.fail('expected an error')
}

// A zip of one stored (uncompressed) file, enough for the runtimes' unzip.
function zip (fileName, text) {
  const data = Buffer.from(text)
  const nameBytes = Buffer.from(fileName)
  const crc = zlib.crc32(data)
  const local = Buffer.alloc(30)
  local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt32LE(crc, 14)
  local.writeUInt32LE(data.length, 18); local.writeUInt32LE(data.length, 22); local.writeUInt16LE(nameBytes.length, 26)
  const central = Buffer.alloc(46)
  central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6)
  central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(data.length, 24)
  central.writeUInt16LE(nameBytes.length, 28)
  const centralStart = local.length + nameBytes.length + data.length
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10)
  end.writeUInt32LE(central.length + nameBytes.length, 12); end.writeUInt32LE(centralStart, 16)
  return Buffer.concat([local, nameBytes, data, central, nameBytes, end])
}

const record = (id) => recordOf(ow, id)

async function main () {
  const seen = {}
  const hello = name('hello')
  const code = 'function main(p) { return { greeting: "hello " + (p.name || "world"), n: p.n } }'

  // actions: a zip, a sequence, a docker image; pages of the listing
  await ow.actions.create({ name: hello, action: code, params: { name: 'npm' } })
  const zipped = name('zipped')
  const z = await ow.actions.create({ name: zipped, kind: 'python:3', action: zip('__main__.py', "def main(args):\n    return {'zip': True, 'n': args.get('greeting')}\n") })
  assert.strictEqual(z.exec.binary, true)
  const seq = name('seq')
  const s = await ow.actions.create({ name: seq, sequence: [`/_/${hello}`, `/_/${zipped}`] })
  assert.deepStrictEqual(s.exec.components, [`/guest/${hello}`, `/guest/${zipped}`])
  assert.deepStrictEqual(await ow.actions.invoke({ name: seq, blocking: true, result: true }), { zip: true, n: 'hello npm' })
  const docker = name('docker')
  const d = await ow.actions.create({ name: docker, action: { exec: { kind: 'blackbox', image: 'openwhisk/dockerskeleton' } } })
  assert.strictEqual(d.exec.image, 'openwhisk/dockerskeleton')
  const page1 = await ow.actions.list({ limit: 2 })
  const page2 = await ow.actions.list({ limit: 2, skip: 2 })
  assert.strictEqual(page1.length, 2)
  assert.ok(!page2.some(a => page1.some(b => a.name === b.name)), 'skip gives the next page')

  // the namespace summary: every collection of the caller's
  const summary = await ow.namespaces.get()
  assert.ok(summary.actions.some(a => a.name === hello))
  seen.summary = Object.keys(summary)

  // activations: filters
  const before = Date.now()
  const started = await ow.actions.invoke({ name: hello, params: { n: 1 } })
  const stored = await record(started.activationId)
  const since = await ow.activations.list({ name: hello, since: before - 1, upto: stored.start + 1, docs: true })
  assert.deepStrictEqual(since.map(a => a.activationId), [started.activationId])
  assert.deepStrictEqual(since[0].response.result, { greeting: 'hello npm', n: 1 })
  const counted = await ow.activations.list({ name: hello, count: true })
  assert.strictEqual(counted.activations, 2)
  assert.strictEqual((await ow.activations.list({ name: hello, skip: 1, limit: 1 })).length, 1)

  // triggers: fire with and without an active rule
  const trigger = name('trig')
  await ow.triggers.create({ name: trigger })
  const idle = await ow.triggers.invoke({ name: trigger, params: { n: 2 } })
  seen.fireWithoutRules = idle
  const rule = name('rule')
  await ow.rules.create({ name: rule, trigger, action: hello })
  const fired = await ow.triggers.invoke({ name: trigger, params: { n: 3 } })
  assert.match(fired.activationId, /^[0-9a-f]{32}$/)
  const fire = await record(fired.activationId)
  seen.fire = fire.response
  await ow.rules.delete({ name: rule })

  // feeds: the alarms feed through the client's own lifecycle calls
  const alarm = name('alarm')
  await ow.triggers.create({ name: alarm, trigger: { annotations: [{ key: 'feed', value: '/whisk.system/alarms/alarm' }] } })
  const feedCreate = await ow.feeds.create({ name: '/whisk.system/alarms/alarm', trigger: alarm, params: { cron: '0 0 1 1 *' } })
  assert.strictEqual(feedCreate.response.success, true, JSON.stringify(feedCreate))
  const feedRead = await ow.feeds.get({ name: '/whisk.system/alarms/alarm', trigger: alarm })
  seen.feedRead = feedRead.response.result
  const feedDelete = await ow.feeds.delete({ name: '/whisk.system/alarms/alarm', trigger: alarm })
  assert.strictEqual(feedDelete.response.success, true, JSON.stringify(feedDelete))
  await ow.triggers.delete({ name: alarm })

  // routes: the API gateway's contract, as the client calls it
  const basepath = `/npm${suffix}`
  const created = await ow.routes.create({ basepath, relpath: '/hello', operation: 'GET', action: hello, name: 'npmapi' })
  seen.routeCreate = { gwApiUrl: created.gwApiUrl, paths: Object.keys(created.apidoc.paths) }
  await ow.routes.create({ basepath, relpath: '/books/{id}', operation: 'POST', action: hello, responsetype: 'http' })
  const got = await ow.routes.get({ basepath })
  assert.strictEqual(got.apis.length, 1)
  seen.routeGet = Object.keys(got.apis[0].value.apidoc.paths).sort()
  const listed = await ow.routes.list({ relpath: '/hello' })
  assert.ok(listed.apis.some(a => a.value.apidoc.basePath === basepath), JSON.stringify(listed))
  const deleted = await ow.routes.delete({ basepath, relpath: '/hello', operation: 'GET' })
  seen.routeDeleteOne = deleted
  assert.deepStrictEqual(Object.keys((await ow.routes.get({ basepath })).apis[0].value.apidoc.paths), ['/books/{id}'])
  await ow.routes.delete({ basepath })
  seen.routeGetAfterDelete = await ow.routes.get({ basepath })

  // another namespace's packages: only the public ones
  const publicPkgs = await ow.packages.list({ namespace: 'whisk.system' })
  seen.public = publicPkgs.map(p => p.name).sort()
  const alarms = await ow.packages.get({ name: '/whisk.system/alarms' })
  seen.alarmFeeds = alarms.feeds.map(f => f.name).sort()

  // errors: what each of whisk's answers becomes
  seen.errors = {}
  seen.errors[400] = await error(ow.actions.list({ limit: 201 }))
  const bad = openwhisk({ apihost, api_key: apiKey.replace(/.$/, (c) => c === 'x' ? 'y' : 'x') })
  seen.errors[401] = await error(bad.actions.list())
  seen.errors[403] = await error(ow.actions.create({ name: `/whisk.system/${name('nope')}`, action: code }))
  seen.errors[404] = await error(ow.actions.get({ name: name('missing') }))
  seen.errors[409] = await error(ow.actions.create({ name: hello, action: code }))
  seen.errors[413] = await error(ow.actions.invoke({ name: hello, blocking: true, params: { big: 'x'.repeat(1100000) } }))
  const failing = name('fails')
  await ow.actions.create({ name: failing, action: 'function main() { return { error: { message: "it broke" } } }' })
  seen.errors[502] = await error(ow.actions.invoke({ name: failing, blocking: true }))
  seen.errors.result502 = await error(ow.actions.invoke({ name: failing, blocking: true, result: true }))
  for (const status of [400, 401, 403, 404, 409, 413, 502]) {
    const e = seen.errors[status]
    assert.strictEqual(e.status, status, JSON.stringify(e))
    if (status !== 502) assert.match(e.error.code, /^[0-9a-zA-Z]+$/, JSON.stringify(e))
  }

  for (const a of [seq, hello, zipped, docker, failing]) await ow.actions.delete({ name: a })
  await ow.triggers.delete({ name: trigger })
  console.log(JSON.stringify(seen))
}

main().catch(err => {
  console.error(err && err.stack ? err.stack : err)
  process.exit(1)
})
