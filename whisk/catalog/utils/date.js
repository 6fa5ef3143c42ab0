// The current date and time.
function main() {
  const now = new Date()
  console.log('It is now ' + now)
  return { date: now }
}
