// The URL that activates an action (or a trigger, or a web action) of the caller's namespace.
const WEB_EXTENSIONS = ['.html', '.http', '.json', '.svg', '.text']

function main(args) {
  const host = process.env.__OW_API_HOST
  const namespace = process.env.__OW_NAMESPACE
  const isWeb = args.web === true
  if (isWeb && args.trigger) {
    return { error: 'triggers are not allowed for web actions.' }
  }
  if (isWeb && args.ext && !WEB_EXTENSIONS.includes(args.ext)) {
    return { error: 'extension for web action must be one of [".html", ".http", ".json", ".svg", ".text"].' }
  }
  if (!isWeb && args.trigger && args.path && args.path.includes('/')) {
    return { error: 'triggers are not allowed in packages.' }
  }
  const base = isWeb
    ? `${host}/api/v1/web/${namespace}`
    : `${host}/api/v1/namespaces/${namespace}/${args.trigger === true ? 'triggers' : 'actions'}`
  if (!args.path) {
    return { url: base }
  }
  const path = isWeb && !args.path.includes('/') ? `default/${args.path}` : args.path
  return { url: `${base}/${path}${isWeb ? (args.ext || '') : ''}` }
}
