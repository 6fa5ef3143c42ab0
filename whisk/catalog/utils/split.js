// Splits `payload` at `separator` (default: line ends).
function main(params) {
  const separator = params.separator || /\r?\n/
  const text = String(params.payload)
  const result = { lines: text.split(separator), payload: params.payload }
  console.log('split: returning ' + JSON.stringify(result))
  return result
}
