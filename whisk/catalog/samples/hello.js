// Logs a greeting for `payload`; returns nothing.
function main(params) {
  console.log('hello', params.payload + '!')
}
