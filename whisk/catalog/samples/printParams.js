// Logs each parameter, sorted by name, and returns them.
function main(params) {
  const out = {}
  const lines = Object.keys(params).sort().map(key => {
    out[key] = params[key]
    return 'params.' + key + ': ' + JSON.stringify(params[key])
  })
  lines.forEach(line => console.log(line))
  return { params: out }
}
