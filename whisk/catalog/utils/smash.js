// Nests every parameter under the one named by `$fieldName`.
function main(args) {
  const field = args.$fieldName
  if (typeof field !== 'string') {
    return { error: "Expected an argument '$fieldName' of type 'string'." }
  }
  const rest = Object.assign({}, args)
  delete rest.$fieldName
  return { [field]: rest }
}
