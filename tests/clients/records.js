// The record of an activation once the API has it, as the client scripts wait for it: the client answers 404 until
// the record is stored; with `ended`, a record of an activation still running (no `end`) is waited past too.
async function recordOf (ow, id, { ended = false } = {}) {
  for (let i = 0; i < 400; i++) {
    try {
      const activation = await ow.activations.get({ name: id })
      if (!ended || activation.end) return activation
    } catch (err) {
      if (err.statusCode !== 404) throw err
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no record for ${id}`)
}

module.exports = { recordOf }
