// The namespace of the key this action was invoked with.
function main() {
  return { namespace: process.env.__OW_NAMESPACE }
}
