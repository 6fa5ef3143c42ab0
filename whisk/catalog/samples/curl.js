// Runs `curl` on the host named by `payload`; its output (or its error output) is `msg`.
const { execFile } = require('child_process')

function main(params) {
  const host = String(params.payload)
  console.log('Curl to ' + host)
  return new Promise(resolve => {
    execFile('curl', ['--silent', '--show-error', '--connect-timeout', '3', host], (error, stdout, stderr) => {
      const out = error ? (stderr || String(error.message)) : stdout
      console.log(out)
      resolve({ msg: out })
    })
  })
}
