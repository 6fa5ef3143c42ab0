// Counts the words (separated by single spaces) in `payload`.
function main(params) {
  const text = String(params.payload)
  const count = text.split(' ').length
  console.log("The message '" + text + "' has", count, 'words')
  return { count: count }
}
