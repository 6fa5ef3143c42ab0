// Sorts `lines` as JavaScript's Array.prototype.sort does (as strings), and counts them.
function main(params) {
  const lines = params.lines || []
  console.log('sort input msg: ' + JSON.stringify(params))
  console.log('sort before: ' + lines)
  lines.sort()
  console.log('sort after: ' + lines)
  return { lines: lines, length: lines.length }
}
