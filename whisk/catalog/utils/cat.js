// Joins `lines` into one string, one line each.
function main(params) {
  const lines = params.lines || []
  const result = { lines: lines, payload: lines.join('\n') }
  console.log('cat: returning ' + JSON.stringify(result))
  return result
}
