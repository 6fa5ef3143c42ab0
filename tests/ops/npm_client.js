// The official openwhisk npm client against whisk behind nginx over HTTPS with a self-signed certificate
// (`ignore_certs: true`). Usage: node npm_client.js APIHOST AUTH ACTION; prints one JSON line of what it saw.
'use strict';
const path = require('path');
const openwhisk = require(path.join(__dirname, '..', 'node', 'node_modules', 'openwhisk'));

async function main() {
  const [apihost, apiKey, name] = process.argv.slice(2);
  const ow = openwhisk({ apihost, api_key: apiKey, ignore_certs: true });
  const code = 'def main(args):\n    return {"greeting": "hello " + args.get("name", "world")}\n';
  const created = await ow.actions.create({ name, action: code, kind: 'python:3' });
  const listed = await ow.actions.list();
  const result = await ow.actions.invoke({ name, blocking: true, result: true, params: { name: 'nginx' } });
  await ow.actions.delete({ name });
  console.log(JSON.stringify({
    created: created.name,
    listed: listed.map((a) => a.name),
    result,
  }));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
