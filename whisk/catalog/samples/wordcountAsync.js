// wordCount, answered from a promise a tenth of a second later.
function main(params) {
  return new Promise(resolve => {
    setTimeout(() => {
      const count = params.payload.split(' ').length
      console.log("The message '" + params.payload + "' has", count, 'words')
      resolve({ count: count })
    }, 100)
  })
}
