// Returns its parameters unchanged.
function main(params) {
  return params || {}
}
